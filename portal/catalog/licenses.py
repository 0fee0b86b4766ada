"""Licences a dataset may carry, with their URLs and attribution wording."""

from dataclasses import dataclass

from portal.core.errors import InvalidInput


@dataclass(frozen=True)
class License:
    """A licence as CKAN's license_list shows it, plus Japanese wording."""

    id: str
    title: str
    title_en: str
    url: str
    attribution: str
    is_open: bool = True
    aliases: tuple[str, ...] = ()


LICENSES: tuple[License, ...] = (
    License(
        "pdl-1.0",
        "公共データ利用規約（第1.0版）",
        "Public Data License (Version 1.0)",
        "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0",
        "出典：{source}（{url}）、PDL1.0",
        aliases=("PDL1.0", "pdl1.0"),
    ),
    License(
        "cc-by-4.0",
        "クリエイティブ・コモンズ 表示 4.0 国際",
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/deed.ja",
        "出典：{source}（{url}）、CC BY 4.0",
        aliases=("cc-by", "cc-by-40-intl", "CC-BY-4.0"),
    ),
    License(
        "jp-gsl-2.0",
        "政府標準利用規約（第2.0版）",
        "Government of Japan Standard Terms of Use (Version 2.0)",
        "https://www.digital.go.jp/resources/open_data/",
        "出典：{source}（{url}）",
        aliases=("japanese-20", "gsl-2.0"),
    ),
    License(
        "cc-zero",
        "クリエイティブ・コモンズ CC0 1.0 全世界 パブリック・ドメイン提供",
        "Creative Commons CC0 1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/deed.ja",
        "出典の表示は不要です（任意：{source}）",
        aliases=("cc0", "CC0-1.0"),
    ),
    License(
        "cc-by-sa-4.0",
        "クリエイティブ・コモンズ 表示-継承 4.0 国際",
        "Creative Commons Attribution-ShareAlike 4.0 International",
        "https://creativecommons.org/licenses/by-sa/4.0/deed.ja",
        "出典：{source}（{url}）、CC BY-SA 4.0",
        aliases=("cc-by-sa", "CC-BY-SA-4.0"),
    ),
    License(
        "cc-by-nc-4.0",
        "クリエイティブ・コモンズ 表示-非営利 4.0 国際",
        "Creative Commons Attribution-NonCommercial 4.0 International",
        "https://creativecommons.org/licenses/by-nc/4.0/deed.ja",
        "出典：{source}（{url}）、CC BY-NC 4.0（営利目的の利用は不可）",
        is_open=False,
        aliases=("cc-nc", "cc-by-nc", "CC-BY-NC-4.0"),
    ),
    License(
        "cc-by-nd-4.0",
        "クリエイティブ・コモンズ 表示-改変禁止 4.0 国際",
        "Creative Commons Attribution-NoDerivatives 4.0 International",
        "https://creativecommons.org/licenses/by-nd/4.0/deed.ja",
        "出典：{source}（{url}）、CC BY-ND 4.0（改変は不可）",
        is_open=False,
        aliases=("cc-by-nd", "CC-BY-ND-4.0"),
    ),
    License(
        "odc-odbl",
        "Open Data Commons Open Database License (ODbL)",
        "Open Data Commons Open Database License (ODbL)",
        "https://opendatacommons.org/licenses/odbl/1-0/",
        "出典：{source}（{url}）、ODbL 1.0",
        aliases=("ODbL-1.0",),
    ),
)
DEFAULT_LICENSE_ID = "pdl-1.0"
_BY_ID = {license.id: license for license in LICENSES} | {
    alias.lower(): license for license in LICENSES for alias in license.aliases
}


def get_license(license_id: str) -> License:
    """Return a licence by id or known alias; refuse unknown ones with the choices."""
    found = _BY_ID.get(license_id.strip().lower()) or _BY_ID.get(license_id.strip())
    if found is None:
        choices = ", ".join(license.id for license in LICENSES)
        raise InvalidInput(f"unknown licence {license_id!r}; use one of: {choices}")
    return found
