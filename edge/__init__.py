"""The Ruang edge agent: runs on a Raspberry Pi beside the devices of a floor.

It reads the desk units over serial, takes the decisions that must work
offline (badge tap -> check-in -> LED) locally, and streams events and
telemetry to the cloud over MQTT following `ruang.contract`.
"""
