"""The click-token key set (issue 17): a KMS-encrypted Secrets Manager secret generated at deploy
in the flat key-set shape common.click_token parses, readable by the ingest Lambda alone, whose
environment names it (CLICK_TOKEN_SECRET); manual rotation acknowledged for cdk-nag (SMG4)."""
from __future__ import annotations

import json
import re

from aws_cdk.assertions import Template

from tests.infra.test_infra_stack import as_list, ingest_function, ingest_policy_statements


def secret(template: Template) -> tuple[str, dict]:
    secrets = template.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 1
    (logical_id, resource), = secrets.items()
    return logical_id, resource["Properties"]


def test_secret_is_kms_encrypted_and_generated_in_the_flat_key_set_shape(default_template):
    _, props = secret(default_template)
    assert props["Name"] == "clickagg-click-token-keys"
    key_id = next(iter(default_template.find_resources("AWS::KMS::Key")))
    assert props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    gen = props["GenerateSecretString"]
    assert json.loads(gen["SecretStringTemplate"]) == {"active": "k1"}
    assert gen["GenerateStringKey"] == "k1" and gen["PasswordLength"] == 64
    assert gen["ExcludePunctuation"] is True and gen["ExcludeUppercase"] is True
    # what may remain: 0-9 a-f, i.e. 64 hex digits = a 32-byte key parse_key_set accepts
    alphabet = set("abcdefghijklmnopqrstuvwxyz0123456789") - set(gen["ExcludeCharacters"])
    assert alphabet == set("0123456789abcdef")
    from common.click_token import parse_key_set
    assert parse_key_set(json.dumps({"active": "k1", "k1": "0f" * 32})).kids == ("k1",)


def test_custom_prefix_names_the_secret(custom_template):
    assert secret(custom_template)[1]["Name"] == "ca-test-click-token-keys"
    assert ingest_function(custom_template)["Environment"]["Variables"]["CLICK_TOKEN_SECRET"] \
        == "ca-test-click-token-keys"


def test_only_the_ingest_function_may_read_the_secret(default_template):
    logical_id, _ = secret(default_template)
    [statement] = [s for s in ingest_policy_statements(default_template)
                   if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
    assert sorted(as_list(statement["Action"])) == [
        "secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]
    assert statement["Resource"] == {"Ref": logical_id}  # the secret's ARN, nothing wider
    readers = [name for name, p in default_template.find_resources("AWS::IAM::Policy").items()
               if "secretsmanager:" in json.dumps(p)]
    assert len(readers) == 1 and re.match("^IngestFunctionRole", readers[0]), readers
    assert "SecretsManager::ResourcePolicy" not in json.dumps(default_template.to_json())


def test_ingest_env_names_the_secret_and_observes_tokens_by_default(default_template):
    env = ingest_function(default_template)["Environment"]["Variables"]
    assert env["CLICK_TOKEN_SECRET"] == "clickagg-click-token-keys"
    assert (env["CLICK_TOKEN_MODE"], env["CLICK_TOKEN_MAX_AGE_S"], env["CLICK_TOKEN_CLOCK_SKEW_S"]) \
        == ("observe", "86400", "300")


def test_manual_rotation_is_acknowledged_on_the_secret(default_app):
    from tests.infra.test_infra_nag import acknowledgements

    acks = acknowledgements(default_app)
    [where] = [w for w in acks if w.split(" ", 1)[1].removeprefix("Annotation::")
               == "AwsSolutions-SMG4"]
    assert where.startswith("ClickAgg/ClickTokenKeys/Secret ")
    assert "manually" in acks[where] and "docs/click-token.md" in acks[where]
