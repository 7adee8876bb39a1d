"""Facts of the GM/T (国密) cryptography standards that layers below ``sbcard.crypto`` name too.

The card model's profiles (``sbcard.card.profiles``) may not import ``sbcard.crypto`` (it is
above them), and ``sbcard.crypto`` should not reach into the card model for a cryptographic
fact, so such a fact lives here, at the bottom, where both (and the CLI's ``--help``, without
loading any cryptography) may import it.
"""

from __future__ import annotations

#: The default user ID (用户身份标识ID) that goes into Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖
#: xA ‖ yA) when none is agreed: the 16 ASCII bytes "1234567812345678". Source: GM/T 0009-2012
#: (SM2密码算法使用规范) §10 "用户身份标识ID的默认值"; Linux (include/crypto/sm2.h) and
#: OpenSSL define the same ``SM2_DEFAULT_USERID`` "as specified in GM/T 0009-2012", and
#: ``openssl … distid:1234567812345678`` names it. tests/test_crypto_sm2.py checks Z against
#: a published vector computed with it.
SM2_DEFAULT_USER_ID = b"1234567812345678"
