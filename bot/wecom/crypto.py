"""WeCom callback signature and AES (docs/wecom.md §1.4–1.5).

The signature is checked here in constant time (wechatpy compares with `!=`); the AES work —
AES-256-CBC, IV = key[:16], PKCS#7 to 32 bytes, trailing CorpID — is wechatpy's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException


class CorpIdMismatch(Exception):
    """The message decrypted, but for another corp (or another app's key material)."""


class BadCiphertext(Exception):
    """Not something WeCom encrypted: bad base64, bad padding, bad length."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """hex(SHA1(sorted([token, timestamp, nonce, encrypt]) concatenated))."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


class CallbackCrypto:
    def __init__(self, token: str, aes_key: str, corp_id: str) -> None:
        self.token = token
        self.corp_id = corp_id
        self.key = base64.b64decode(aes_key + "=")
        if len(self.key) != 32:
            raise ValueError("WECOM_AES_KEY must be the 43-character EncodingAESKey")

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bool:
        expected = signature(self.token, timestamp, nonce, encrypt)
        return hmac.compare_digest(expected, msg_signature.lower())

    def decrypt(self, encrypt: str) -> str:
        try:
            return PrpCrypto(self.key).decrypt(encrypt, self.corp_id)
        except InvalidCorpIdException:
            raise CorpIdMismatch() from None
        except Exception as exc:  # base64, padding, struct and unicode errors all mean "not WeCom's"
            raise BadCiphertext(exc.__class__.__name__) from None

    def encrypt(self, plaintext: str) -> str:
        """Used by the stand-in peer and by tests; WeCom callbacks are answered with an empty 200."""
        return PrpCrypto(self.key).encrypt(plaintext, self.corp_id).decode()
