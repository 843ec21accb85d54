#!/bin/sh
# One database per Heron service (their owner the `heron` role), on the first start only.
set -eu
for database in $HERON_DATABASES; do
  echo "creating database $database"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"$database\" OWNER \"$POSTGRES_USER\""
done
