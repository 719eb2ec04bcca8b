"""Pure Block Kit builders: one function per message or tab grantbot shows.

Contract: every builder takes plain data (grants, rules, ``now``) and returns a
:class:`~bot.slack.blocks.kit.Message` or a view ``dict`` ready for the Web API. No I/O, no
clock, no Slack client. ``kit`` holds Slack's limits, the primitives and the text helpers;
``describe`` how a grant is named; ``messages`` the messages about one grant; ``lists`` the
ephemeral lists; ``home`` the App Home tab. Modals, built and read back together, are in
:mod:`bot.slack.modals`.
"""
