"""Simulated office hardware for tests, benchmarks and `ruang sim`.

`deskunit` emulates one desk unit on a pseudo-terminal, byte for byte;
`floor` starts a whole floor of them; `scenario` scripts what people do at the
desks (timed presence, badge taps and button presses) and generates office days.
"""
