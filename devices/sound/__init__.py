"""Sound: Panda3D's OpenAL back-end, run in a spawned process of its own (see :mod:`devices.sound.worker`)."""
