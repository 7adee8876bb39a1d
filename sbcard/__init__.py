"""sbcard: a toolkit for the chip of the Chinese social security card (社会保障卡).

Layers, lowest first: ``transport`` (bytes to a card) → ``apdu`` (commands, status words,
T=0 and tracing) → ``card`` (file system and data elements as data) → ``crypto`` and ``keys``
→ ``ops`` (read, verify, activate, personalise) → ``cli``. ``sim`` is a card, not a layer:
it answers APDUs the way a MOHRSS card does.
"""

__version__ = "0.1.0"
