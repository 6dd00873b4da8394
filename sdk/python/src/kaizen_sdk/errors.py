"""A unit's typed failure, as a Python exception.

Raise ``UnitError("invalid-input", "missing name")`` anywhere below
``Unit.handle``: the call answers with that class and message (HTTP 422 for
``invalid-input``, which does not count against the unit). Any other exception
becomes the ``internal`` class with the exception's message, and its
traceback goes to stderr, which the host logs with the call's id.
"""

#: The classes a unit reports for its own failures, by their contract names.
#: The host adds ``timeout``, ``memory``, ``trap`` and ``circuit-open`` for
#: what it observes around a call; any other name is carried as ``other``.
UNIT_CLASSES = ("invalid-input", "dependency", "internal")

#: Every class the contract names (``trap`` and ``other`` carry a text).
KNOWN_CLASSES = ("timeout", "memory", "trap", "invalid-input", "dependency", "internal", "circuit-open")


class UnitError(Exception):
    """A failure with its contract class: ``UnitError("dependency", "db down")``.

    ``error_class`` is the class's contract name (``invalid-input``,
    ``dependency``, ``internal``, ...); a name the contract does not know is
    sent as ``other(name)``.
    """

    def __init__(self, error_class: str, message: str):
        if not isinstance(error_class, str) or not error_class:
            raise TypeError(f"error_class must be a class name such as 'invalid-input', not {error_class!r}")
        super().__init__(message)
        self.error_class = error_class
        self.message = message

    def __str__(self) -> str:
        return f"{self.error_class}: {self.message}"

    def __repr__(self) -> str:
        return f"UnitError({self.error_class!r}, {self.message!r})"

    def to_wit(self):
        """This error as the generated ``types.UnitError`` (inside a component)."""
        from wit_world.imports import types

        return types.UnitError(error_class=error_class_to_wit(self.error_class), message=self.message)


def error_class_to_wit(name: str):
    """The generated ``types.ErrorClass_*`` value for a class name."""
    from wit_world.imports import types

    simple = {
        "timeout": types.ErrorClass_Timeout,
        "memory": types.ErrorClass_Memory,
        "invalid-input": types.ErrorClass_InvalidInput,
        "dependency": types.ErrorClass_Dependency,
        "internal": types.ErrorClass_Internal,
        "circuit-open": types.ErrorClass_CircuitOpen,
    }
    if name in simple:
        return simple[name]()
    if name == "trap":
        return types.ErrorClass_Trap("raised by the unit")
    return types.ErrorClass_Other(name)


def error_class_name(value) -> str:
    """The contract name of a generated ``types.ErrorClass_*`` value
    (``ErrorClass_InvalidInput()`` → ``"invalid-input"``)."""
    kind = type(value).__name__.removeprefix("ErrorClass_")
    name = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
    return name
