"""The demo ``make run`` gives with no API key: the sandbox in a child process, connections
pointed at it, a demo login, and the clean-up that retires all of it once a real key exists.
The app's side of the sandbox, so ``dealdesk/sandbox/`` imports nothing from the apps."""
