"""Running the server as a process: listening sockets and ``serve --workers N``'s supervisor."""
