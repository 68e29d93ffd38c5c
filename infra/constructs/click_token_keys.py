"""The click-token key set (issue 17, docs/click-token.md): one Secrets Manager secret, encrypted
with the pipeline's KMS key, read by the ingest Lambda only (`grant_read` in the stack).

Its first value is generated at deploy time by Secrets Manager, in the flat key-set shape
common.click_token.parse_key_set accepts: `{"active": "k1", "k1": "<64 hex digits>"}` (32
random bytes: every character but 0-9 a-f excluded). Rotation is manual, by the ad-server owner
(two keys live during a rotation; procedure in docs/click-token.md, "Keys and rotation"): a
rotation Lambda would have to coordinate with the ad servers that issue tokens, which are outside
this stack.
"""
from __future__ import annotations

import string

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.settings import StackSettings

FIRST_KID = "k1"
KEY_HEX_DIGITS = 64  # 32 bytes (click_token.MIN_KEY_BYTES)
NOT_HEX = "".join(sorted(set(string.ascii_lowercase) - set("abcdef")))


class ClickTokenKeys(Construct):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.name = settings.names.click_token_secret  # what CLICK_TOKEN_SECRET says
        self.secret = secretsmanager.Secret(
            self, "Secret",
            secret_name=self.name,
            description=f"{settings.prefix}: click-token HMAC key set (docs/click-token.md)",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"active": "%s"}' % FIRST_KID,
                generate_string_key=FIRST_KID,
                password_length=KEY_HEX_DIGITS,
                exclude_punctuation=True, exclude_uppercase=True, include_space=False,
                exclude_characters=NOT_HEX,
            ),
        )
        Validations.of(self.secret).acknowledge(Acknowledgment(
            id="AwsSolutions-SMG4",
            reason="Click-token keys are rotated manually by the ad-server owner (two keys live "
                   "during a rotation, docs/click-token.md): the ad servers that sign tokens are "
                   "outside this stack, so a rotation Lambda could not switch them safely.",
        ))
