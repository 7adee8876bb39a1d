"""``sbcard serve``: the local card service that browser pages call (读卡服务).

A page cannot reach a USB reader, so hospital and pharmacy systems call a small program on
127.0.0.1 over WebSocket or HTTP. This package is that program on top of the national
interface (``sbcard.national.SSCardDriver``): the three dialects seen in public page code
(``dialects``), sbcard's own JSON API and card events (``api``), the security rules a
local service needs because every web page the browser opens can reach it (``security``),
one card operation at a time per reader (``queue``), and the counter page (``static/``).
Guide: docs/local-service.md.
"""
