"""DingTalk's HTTP event-subscription crypto (docs/dingtalk.md §3.3): the callback body is
`{"encrypt": …}` with `msg_signature`, `timestamp`, `nonce` in the query; the answer is the word
"success" encrypted the same way.

    key       = Base64Decode(aes_key + "=")            32 bytes: AES-256-CBC, IV = key[:16]
    plaintext = random(16) + len(msg) (4 bytes, big-endian) + msg + owner key (the app's AppKey)
    padding   = PKCS#7 to a multiple of 32 bytes
    signature = hex(SHA1(sorted([token, timestamp, nonce, encrypt]) concatenated))

Written here with `cryptography` rather than taken from an SDK: the tests check it against
DingTalk's published vectors (§3.4) and the stand-in's peer encrypts with other code (wechatpy's).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class OwnerKeyMismatch(Exception):
    """It decrypted, but for another app (its trailing owner key is not ours)."""


class BadCiphertext(Exception):
    """Not something DingTalk encrypted: bad base64, bad padding, bad length."""


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


class EventCrypto:
    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        self.token, self.owner_key = token, owner_key
        try:
            self.key = base64.b64decode(aes_key + "=")
        except binascii.Error:
            self.key = b""
        if len(self.key) != 32:
            raise ValueError("DINGTALK_EVENT_AES_KEY must be the 43-character aes_key")

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bool:
        return hmac.compare_digest(signature(self.token, timestamp, nonce, encrypt), msg_signature.lower())

    def decrypt(self, encrypt: str) -> str:
        try:
            raw = base64.b64decode(encrypt, validate=True)
            if not raw or len(raw) % 16:
                raise ValueError("length")
            decryptor = self._cipher().decryptor()
            plain = decryptor.update(raw) + decryptor.finalize()
            pad = plain[-1]
            if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
                raise ValueError("padding")
            content = plain[16:-pad]
            (length,) = struct.unpack(">I", content[:4])
            message, owner = content[4:4 + length], content[4 + length:]
            if len(message) != length:
                raise ValueError("length")
            text = message.decode("utf-8")
        except (ValueError, binascii.Error, struct.error, UnicodeDecodeError) as exc:
            raise BadCiphertext(exc.__class__.__name__) from None
        if owner.decode("utf-8", "replace") != self.owner_key:
            raise OwnerKeyMismatch()
        return text

    def encrypt(self, text: str, *, random16: bytes | None = None) -> str:
        message = text.encode("utf-8")
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(message)) + message + self.owner_key.encode()
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def reply(self, text: str = "success", *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        """The answer body: the signature is over *our* timeStamp and nonce (§3.3)."""
        timestamp = timestamp or str(int(time.time() * 1000))
        nonce = nonce or base64.b32encode(os.urandom(10)).decode()[:16]
        encrypt = self.encrypt(text)
        return {"msg_signature": signature(self.token, timestamp, nonce, encrypt), "timeStamp": timestamp,
                "nonce": nonce, "encrypt": encrypt}

    def _cipher(self) -> Cipher:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))


def read_payload(text: str) -> dict | None:
    """The decrypted JSON object, or None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
