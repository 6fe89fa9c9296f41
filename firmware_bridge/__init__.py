"""Firmware bridge: the Raspberry Pi side of the wired links to office hardware.

`deskunit` is the sans-io codec of the desk unit UART protocol (see
docs/desk-unit-protocol.md), `deskunit_link` the sans-io ack/retransmit layer
shared by the Pi and the desk unit simulator, and `serial_transport` the asyncio
serial port that puts both on a real (or pseudo) terminal.
"""
