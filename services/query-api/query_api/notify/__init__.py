"""Alerts that reach people: subscriptions per role and territory, signed webhooks through a delivery outbox, a
daily e-mail digest and the Monday review pack (README, "Alerts that reach people")."""
