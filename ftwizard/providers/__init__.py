"""The only code that talks to the outside world: model APIs, fine-tuning services, subprocesses.

Chat inference (teachers, judges, the dry run) goes through
:class:`ftwizard.providers.base.ChatProvider`; see docs/providers.md.
"""
