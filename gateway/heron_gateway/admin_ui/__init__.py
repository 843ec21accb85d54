"""The admin UI at `/admin`: server-rendered pages for editors (`pages`)."""
