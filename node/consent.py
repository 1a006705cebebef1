"""Enterprise consent: an authorization counts only with its registry's signature.

Trust model. An enterprise consents to an institution's queries by signing the
authorization (:func:`ledger.consent_message`: every field of it, under a
context string). In the simulator, as with the real chain's e-seal services,
the enterprise signs through the registry of the city it is registered in
(its USCC's administrative code): the registry authenticates the enterprise
and signs on its behalf with a key the root-signed manifest names. An
institution therefore cannot assert consent by itself: it holds no registry
key. The home node checks the signature when the authorization is filed and
again at every report; every holder checks it on the entry it is shown, and
offline bundle verification checks it with the manifest alone.

Invariants: no I/O; a valid consent is a valid Ed25519 signature, by the
registry serving the enterprise's administrative code, over exactly the
authorization that carries it.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import AuthorizationEntry, InvalidUsccError, consent_message, parse_uscc
from node.consortium import Manifest
from node.errors import AuthorizationError

__all__ = ["sign_consent", "verify_consent"]


def sign_consent(registry_key: Ed25519PrivateKey, auth: AuthorizationEntry) -> str:
    """The base64 consent signature a registry gives ``auth`` (for its ``consent`` field)."""
    return base64.b64encode(registry_key.sign(consent_message(auth))).decode()


def verify_consent(manifest: Manifest, auth: AuthorizationEntry) -> str:
    """Check the enterprise's consent on ``auth``; returns the signer's key id.

    Raises:
        AuthorizationError: reason ``no-consent`` (unsigned), ``no-registry``
            (no registry serves the enterprise's area) or ``bad-consent``
            (the signature does not verify).
    """
    what = f"authorization {auth.authorization_id}"
    if not auth.consent:
        raise AuthorizationError(
            "no-consent", f"{what} carries no consent signed for enterprise {auth.uscc}"
        )
    try:
        admin = parse_uscc(auth.uscc).admin_code
    except InvalidUsccError as exc:
        raise AuthorizationError("bad-consent", f"{what}: {exc}") from exc
    registry = manifest.registry_for_admin_code(admin)
    if registry is None:
        raise AuthorizationError(
            "no-registry",
            f"no registry in the manifest signs for enterprises of area {admin}, "
            f"so {what} cannot carry a valid consent",
        )
    try:
        registry.key().verify(base64.b64decode(auth.consent, validate=True), consent_message(auth))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise AuthorizationError(
            "bad-consent",
            f"the consent on {what} is not {registry.key_id}'s signature for enterprise "
            f"{auth.uscc} over this authorization",
        ) from exc
    return registry.key_id
