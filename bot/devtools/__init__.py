"""Development and test tools shipped with the package: embedded Redis, Slack emulator."""
