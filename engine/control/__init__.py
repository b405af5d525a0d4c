"""Operator control: the commands every surface shares (:mod:`engine.control.commands`), the one event
protocol they all speak (:mod:`engine.control.protocol`, :mod:`engine.control.hub`), accounts and
sessions (:mod:`engine.control.accounts`) and the audit log. No network code: the console (HTTP and
WebSocket), OSC control and MQTT control are services of their protocol's package."""
