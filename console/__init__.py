"""The operator console (issue 16): a server-rendered web application over the same Redis state as `dvci`."""
