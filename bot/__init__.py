"""The core of frictionlog: commands, the service, roles, redaction, the CLI.

Platform-neutral by rule: nothing here imports slack_bolt, slack_sdk, botbuilder or openai.
"""
