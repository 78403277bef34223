"""Check types over secrets baked into an image: private keys, tool credentials,
``authorized_keys`` and ssh host keys.

They read :class:`imageaudit.facts.credentials.CredentialsFacts` (which records whether a
file holds a secret and the names of the keys that do, never a secret itself), the
``accounts`` facts' authorized keys and the ``files`` facts' sensitive paths.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from imageaudit.checks import MissingPolicy, check_type
from imageaudit.facts.credentials import CredentialFile, CredentialsFacts, PrivateKey
from imageaudit.findings import CheckResult, Rule, code
from imageaudit.imagefs import FileType
from imageaudit.model import Evidence, Severity, Status

NO_SECRET = "no secret in the image"


def credentials_facts(facts: Any) -> CredentialsFacts:
    """``facts.credentials``, typed (the engine has already checked it is present)."""
    result: CredentialsFacts = facts.credentials
    return result


def _matches(path: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, g) for g in globs)


def _line(path: str, line: int | None) -> str:
    return f"{path} line {line}" if line else path


class PrivateKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host_keys: bool = Field(
        default=False, description="also report `/etc/ssh/ssh_host_*_key` (another rule does)"
    )
    exclude: list[str] = Field(
        default_factory=list, description="path globs (fnmatch) of keys that are accepted"
    )


def _key_text(key: PrivateKey) -> str:
    algo = f" ({key.algorithm})" if key.algorithm else ""
    return f"{key.kind}{algo}"


@check_type(
    "private_keys",
    params_model=PrivateKeyParams,
    missing=MissingPolicy.ERROR,
    needs=("credentials",),
)
def private_keys(facts: Any, params: PrivateKeyParams, rule: Rule) -> list[CheckResult]:
    """Fails once per file holding a private key (PEM, OpenSSH, PuTTY, PKCS#12...).

    Every instance of the image would share the key. A key known to be encrypted with a
    passphrase is lowered to ``high`` (it still needs only an offline passphrase guess);
    one whose encryption cannot be told (PKCS#12) keeps the rule's severity. A file with
    several keys is reported once, by its first key. ssh host keys are left to their own
    rule unless ``host_keys`` is set.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default). When
    the key search stopped at its budget the collector records an error; the keys found
    are still reported.
    """
    results = []
    seen: set[str] = set()
    for key in credentials_facts(facts).private_keys:
        if key.path in seen or (key.host_key and not params.host_keys):
            continue
        if _matches(key.path, params.exclude):
            continue
        seen.add(key.path)
        where = _line(key.path, key.source.line)
        severity: Severity | None = None
        if key.encrypted is True:
            state = "encrypted with a passphrase; high rather than critical because it must "
            state += "still be cracked"
            if rule.severity.rank > Severity.HIGH.rank:
                severity = Severity.HIGH
        elif key.encrypted is False:
            state = "not encrypted"
        else:
            state = "its encryption could not be determined"
        fp = f", {key.fingerprint}" if key.fingerprint else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(key.path)} holds a private key ({_key_text(key)}, {where}{fp}), "
                f"{state}",
                resource=key.path,
                evidence=Evidence(
                    path=key.path,
                    line=key.source.line,
                    observed=f"{key.kind} private key, "
                    + {True: "encrypted", False: "unencrypted", None: "encryption unknown"}[
                        key.encrypted
                    ],
                    expected=NO_SECRET,
                ),
                severity=severity,
            )
        )
    return results


class CredentialParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(
        default_factory=list,
        description="credential kinds to judge (`aws-credentials`, `netrc`, `kube-config`, "
        "...); all when empty",
    )
    skip_private_keys: bool = Field(
        default=True,
        description="leave files the private-key search found to the private key rule",
    )


def _holds_secret(cred: CredentialFile) -> bool:
    if cred.has_secret is not None:
        return cred.has_secret
    # Presence-only kinds (gcloud databases, PKCS#12): a non-empty file is the credential.
    return cred.type in (FileType.REGULAR, FileType.SYMLINK) and cred.size > 0


@check_type(
    "credential_files",
    params_model=CredentialParams,
    missing=MissingPolicy.ERROR,
    needs=("credentials",),
)
def credential_files(facts: Any, params: CredentialParams, rule: Rule) -> list[CheckResult]:
    """Fails once per cloud or tool credential file that holds a secret.

    Kinds: AWS, OpenStack ``clouds.yaml``/``secure.yaml``, docker ``config.json`` auths,
    ``.netrc``, ``.git-credentials``, kube config, ``.pgpass``, ``.my.cnf``, ``.s3cfg``,
    gcloud, Azure, Globus user credentials and grid-security host keys. A file whose secret
    keys are all empty (``aws_secret_access_key =``) passes; a presence-only kind (gcloud
    ``credentials.db``) fails when non-empty. The message names the keys that hold values,
    never the values.

    Missing fact: the ``credentials`` facts could not be collected (ERROR by default).
    """
    creds = credentials_facts(facts)
    keyfiles = {k.path for k in creds.private_keys} if params.skip_private_keys else set()
    results = []
    for cred in creds.files:
        if params.kinds and cred.kind not in params.kinds:
            continue
        if cred.path in keyfiles or not _holds_secret(cred):
            continue
        what = (
            ", ".join(code(m) for m in cred.markers) + " set" if cred.markers else "non-empty file"
        )
        cut = "; only its start was searched" if cred.truncated else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(cred.path)} holds credentials of kind {code(cred.kind)} "
                f"({what}, {_line(cred.path, cred.source.line)}){cut}",
                resource=cred.path,
                evidence=Evidence(
                    path=cred.path,
                    line=cred.source.line,
                    observed=", ".join(cred.markers) or cred.kind,
                    expected=NO_SECRET,
                ),
            )
        )
    return results


class AuthorizedKeysParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accounts: list[str] = Field(
        default_factory=list, description="accounts to look at; all (and /etc/ssh) when empty"
    )


@check_type(
    "authorized_keys_present",
    params_model=AuthorizedKeysParams,
    missing=MissingPolicy.ERROR,
    needs=("accounts",),
)
def authorized_keys_present(
    facts: Any, params: AuthorizedKeysParams, rule: Rule
) -> list[CheckResult]:
    """Fails once per ``authorized_keys`` file that authorizes at least one key.

    Whoever holds the matching private key can log in to every instance of the image.
    Files in homes and under ``/etc/ssh/authorized_keys*`` are judged; an empty file (no
    key line) passes. The message names the accounts and the first key's fingerprint.

    Missing fact: the ``accounts`` facts could not be collected (ERROR by default).
    """
    accounts = facts.accounts
    results = []
    for kfile in accounts.authorized_key_files:
        if kfile.keys == 0:
            continue
        if params.accounts and not set(kfile.accounts) & set(params.accounts):
            continue
        keys = [k for k in accounts.authorized_keys if k.source.path == kfile.path]
        first = next((k.fingerprint for k in keys if k.fingerprint), None)
        who = (
            ("account " if len(kfile.accounts) == 1 else "accounts ")
            + ", ".join(code(a) for a in kfile.accounts)
            if kfile.accounts
            else "the accounts sshd maps to it"
        )
        plural = "key" if kfile.keys == 1 else "keys"
        fp = f", first {first}" if first else ""
        results.append(
            CheckResult(
                Status.FAIL,
                f"File {code(kfile.path)} lets {kfile.keys} ssh {plural} log in as {who}{fp}",
                resource=kfile.path,
                evidence=Evidence(
                    path=kfile.path,
                    line=keys[0].source.line if keys else None,
                    observed=f"{kfile.keys} {plural}",
                    expected="no authorized_keys in the image",
                ),
            )
        )
    return results


class HostKeyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(
        default="/etc/ssh/ssh_host_*_key", description="glob of the private host key files"
    )


@check_type(
    "ssh_host_keys_present",
    params_model=HostKeyParams,
    missing=MissingPolicy.ERROR,
    needs=("files",),
)
def ssh_host_keys_present(facts: Any, params: HostKeyParams, rule: Rule) -> list[CheckResult]:
    """Fails once per non-empty ssh host private key file shipped in the image.

    Every instance started from the image would present the same host identity, so one
    leaked key lets an attacker impersonate all of them; host keys are generated at first
    boot (``ssh-keygen -A``, cloud-init ``ssh_deletekeys``). Empty placeholder files pass.
    When neither an sshd binary nor ``/etc/ssh/sshd_config`` exists (``sshd`` facts) the
    rule is NOT_APPLICABLE: nothing would use the keys.

    Missing fact: the ``files`` facts could not be collected (ERROR by default); absent
    ``sshd`` facts do not stop the rule.
    """
    sshd = facts.sshd
    if sshd is not None and not sshd.installed:
        return [CheckResult(Status.NOT_APPLICABLE, "Not applicable: sshd is not installed")]
    results = []
    for state in facts.files.sensitive:
        st = state.target
        if not fnmatch.fnmatchcase(state.path, params.pattern) or st is None:
            continue
        if not st.is_file or st.size == 0:
            continue
        results.append(
            CheckResult(
                Status.FAIL,
                f"ssh host key {code(state.path)} is baked into the image ({st.size} bytes): "
                "every instance would share it",
                resource=state.path,
                evidence=Evidence(
                    path=state.path,
                    observed=f"{st.size} bytes",
                    expected="generated at first boot",
                ),
            )
        )
    return results
