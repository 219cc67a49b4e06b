-- Per-tenant settings (issue 4): one JSON object, read into roster_store::TenantSettings.
-- Absent keys take their defaults, so adding a setting needs no migration.
ALTER TABLE tenants ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
