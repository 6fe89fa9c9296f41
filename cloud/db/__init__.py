"""The cloud's SQL state: engine and migrations, the table models, one home for table handles."""
