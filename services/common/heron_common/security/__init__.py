"""Who is calling and may they: principals and permissions, token verification, method policies."""
