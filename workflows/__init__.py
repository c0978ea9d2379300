"""CRM and OA domain logic. State and outbox rows are written in the caller's transaction."""
