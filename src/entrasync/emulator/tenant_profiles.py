"""Who each emulated tenant is, known without generating its directory: id, company, domains, the
owner application of its directory extensions, and its size.

Tenant 0 is the default tenant (Contoso, ``contoso.com``), generated from ``seed`` exactly as a
single-tenant emulator always was. Tenant ``i`` >= 1 is generated from the string seed ``"{seed}/{i}"``,
so it is the same directory whenever (and in whatever order) it is generated.
"""

from __future__ import annotations

import random
import re
import unicodedata
import uuid
from dataclasses import dataclass

from entrasync.emulator.sample_data import COMPANIES

DEFAULT_COMPANY = "Contoso"
# Directory extensions registered in every sample tenant (name, dataType): see
# https://learn.microsoft.com/graph/extensibility-overview#directory-microsoft-entra-id-extensions
SAMPLE_EXTENSIONS = (("costCenter", "String"), ("employeeGrade", "String"))


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _slug(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", folded)


@dataclass(frozen=True)
class TenantProfile:
    index: int
    gen_seed: int | str  # what the generator's random.Random is seeded with
    tenant_id: str
    company: str  # the organization's display name, also the users' companyName
    domain: str  # verified domain of the users' UPNs and mail
    initial_domain: str  # {name}.onmicrosoft.com
    ext_app_id: str  # appId of the application owning the tenant's directory extensions
    ext_app_object_id: str
    ext_app_name: str

    def extension_name(self, short: str) -> str:
        """``extension_{appId without dashes}_{name}``, the property name users carry."""
        return f"extension_{self.ext_app_id.replace('-', '')}_{short}"

    @property
    def extension_names(self) -> tuple[str, ...]:
        return tuple(self.extension_name(n) for n, _ in SAMPLE_EXTENSIONS)


def gen_seed_for(seed: int, index: int) -> int | str:
    return seed if index == 0 else f"{seed}/{index}"


def profile_for(seed: int, index: int) -> TenantProfile:
    gen_seed = gen_seed_for(seed, index)
    tenant_id = new_uuid(random.Random(gen_seed))  # the generator's first draw: see tenant.generate
    if index == 0:
        company, slug = DEFAULT_COMPANY, "contoso"
    else:
        rnd, pos = divmod(index - 1, len(COMPANIES))
        base = COMPANIES[pos]
        company = base if rnd == 0 else f"{base} {rnd + 1}"
        slug = _slug(base) + (str(rnd + 1) if rnd else "")
    ext_rng = random.Random(f"{gen_seed}/extension-app")
    return TenantProfile(
        index=index,
        gen_seed=gen_seed,
        tenant_id=tenant_id,
        company=company,
        domain=f"{slug}.com",
        initial_domain=f"{slug}.onmicrosoft.com",
        ext_app_id=new_uuid(ext_rng),
        ext_app_object_id=new_uuid(ext_rng),
        ext_app_name=f"{company} HR Attributes",
    )


def tenant_sizes(count: int, seed: int, users: int, min_users: int, max_users: int) -> list[int]:
    """``[users]`` for one tenant; otherwise ``count`` sizes drawn uniformly in [min_users, max_users]."""
    if count <= 1:
        return [users]
    rng = random.Random(f"{seed}/sizes")
    return [rng.randint(min_users, max_users) for _ in range(count)]
