"""Cryptography for the card: SM2/SM3/SM4, DES/3DES and the card's own key algorithms.

Submodules, imported on demand so that ``import sbcard.crypto`` loads no crypto library:

* :mod:`sbcard.crypto.symmetric` — SM3, SM4, DES/3DES (via ``cryptography``), explicit
  ISO 9797-1 padding, and the :class:`~sbcard.crypto.symmetric.Algorithm` environment enum.
* :mod:`sbcard.crypto.sm2` — SM2 keys, signatures and encryption over a pluggable backend
  (system libcrypto when available, else gmssl).
* :mod:`sbcard.crypto.card_algos` — diversification, session keys, authentication data,
  secure-messaging MAC and encryption, and the PKI application's PIN proof.
"""
