"""grantbot's modals, each built and read back in one module (``request``, ``deny``), so a
field cannot be added to a form without its parser seeing it; ``fields`` reads a submitted
view's values as untrusted input."""
