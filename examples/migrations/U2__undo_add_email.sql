-- The down SQL of V2, kept in a file of its own.
ALTER TABLE accounts DROP COLUMN email;
