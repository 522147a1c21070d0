"""The `migrate` command: being written (see the open issues)."""


def register(sub):
    pass
