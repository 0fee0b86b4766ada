"""Invented place names (町丁) for the sample city, with their readings."""

from dataclasses import dataclass

from portal.demo.city import SAMPLE_LABEL
from portal.demo.gen_common import full_width

# Invented, generic names; the サンプル prefix on every 町丁 keeps them from passing as real.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("東", "ヒガシ"), ("西", "ニシ"), ("南", "ミナミ"), ("北", "キタ"), ("中", "ナカ"),
    ("新", "シン"), ("上", "カミ"), ("下", "シモ"), ("元", "モト"), ("本", "ホン"),
    ("若", "ワカ"), ("大", "オオ"),
)  # fmt: skip
_STEMS: tuple[tuple[str, str], ...] = (
    ("浜町", "ハママチ"), ("山手町", "ヤマテマチ"), ("原町", "ハラマチ"), ("田町", "タマチ"),
    ("川端町", "カワバタマチ"), ("野町", "ノマチ"), ("森町", "モリマチ"), ("湯町", "ユマチ"),
    ("松町", "マツマチ"), ("緑町", "ミドリマチ"), ("桜町", "サクラマチ"), ("泉町", "イズミマチ"),
    ("栄町", "サカエマチ"), ("旭町", "アサヒマチ"), ("港町", "ミナトマチ"), ("丘町", "オカマチ"),
    ("宮町", "ミヤマチ"), ("石町", "イシマチ"), ("竹町", "タケマチ"), ("梅町", "ウメマチ"),
)  # fmt: skip
_CHOME_PER_ROUND = 2


@dataclass(frozen=True)
class Chocho:
    """One 町丁 (town block) of the sample city."""

    town: str
    town_kana: str
    chome: int

    @property
    def name(self) -> str:
        """Return the 町丁名 as it appears in addresses (サンプル東浜町１丁目)."""
        return f"{SAMPLE_LABEL}{self.town}{full_width(self.chome)}丁目"


def chocho_list(count: int) -> list[Chocho]:
    """Return `count` distinct sample 町丁, two 丁目 per town per round so few span many towns."""
    towns = [(p + s, pk + sk) for s, sk in _STEMS for p, pk in _PREFIXES]
    result: list[Chocho] = []
    first_chome = 1
    while len(result) < count:
        for town, kana in towns:
            for chome in range(first_chome, first_chome + _CHOME_PER_ROUND):
                result.append(Chocho(town, kana, chome))
        first_chome += _CHOME_PER_ROUND
    return result[:count]
