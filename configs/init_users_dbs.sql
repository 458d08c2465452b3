-- Run once by pg-cluster-init (ROLE=init) through pg-router:5000 after the first primary is
-- up. Idempotent, so a re-run after a partial failure is harmless.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN
    CREATE ROLE app LOGIN PASSWORD 'app-pass';
  END IF;
END
$$;
SELECT 'CREATE DATABASE app OWNER app'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'app')\gexec
