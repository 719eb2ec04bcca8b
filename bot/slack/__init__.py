"""Slack: the Bolt app, its listeners, Block Kit builders, the notifier and the directory."""
