-- Issue 11: every statement on the request path names its tenant, so that a PostgreSQL
-- distributed by `tenant_id` (Citus) routes each one to a single shard. Rows that statements
-- used to find by pk alone (a resource's emails, a user's memberships, a group's members in
-- member-id order) get indexes that lead with `tenant_id`.
--
-- Expand only: nodes of the previous release keep using the pk-only indexes
-- (`emails_resource`, `members_member`, `members_group`, `members_group_member_id`); the next
-- release drops them (contract) once no node of this one runs. Each build locks writes to its
-- table while it runs (seconds for 100,000 users).
-- roster: expand-only

CREATE INDEX IF NOT EXISTS emails_tenant_resource ON emails (tenant_id, resource_pk);
CREATE INDEX IF NOT EXISTS members_tenant_member ON members (tenant_id, member_pk);
CREATE INDEX IF NOT EXISTS members_tenant_group_member_id ON members (tenant_id, group_pk, member_id);
