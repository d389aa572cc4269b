"""What a run says to the person who ran it: one headline, and only what needs action.

Every command that makes or checks grids prints the same headline,

    in bounds: 112 of 114 grids (98.2 %); others: 1 below the minimum, 1 oversize building

(:func:`headline`), counted over **all** grids, and then a short list of what a person
must act on (:func:`attention`): each cause once, in plain words, with what to do, and
the communities, compounds and buildings it concerns by name.  Everything else the
solver and the cell builder noted (compounds split along building lines into the fewest
grids, islands joined to a cell, searches that kept their warm start) is information:
counted on one line and kept in ``report.json``, never listed as a problem.

The notes come from :mod:`gridkit.partition` and :mod:`gridkit.units` as sentences;
:data:`NOTE_CAUSES` sorts them by pattern into causes.  A note no pattern knows is
shown as it is, under "other notes", among the items needing attention, so nothing
new is ever hidden.

Texts exist in Chinese (``lang="zh"``, the default of the command line) and English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from gridkit.contracts import IN_BOUNDS_STATUSES, STATUS_WORDS, UNBOUNDED_STATUSES

__all__ = [
    "CAUSES",
    "IN_BOUNDS_STATUSES",
    "NOTE_CAUSES",
    "STATUS_WORDS",
    "Cause",
    "Finding",
    "attention",
    "attention_lines",
    "count_in_bounds",
    "findings",
    "headline",
    "information_line",
    "pct_text",
]

Lang = Literal["zh", "en"]

@dataclass(frozen=True)
class Cause:
    """One cause of notes: whether it needs action, its title and what to do."""

    key: str
    action: bool
    title: dict[str, str]
    todo: dict[str, str] = field(default_factory=dict)


#: Every cause, in the order they are listed.  ``{min}`` / ``{max}`` are the bounds.
CAUSES: dict[str, Cause] = {
    c.key: c
    for c in (
        Cause(
            "failed",
            True,
            {"zh": "社区划分失败", "en": "communities that could not be partitioned"},
            {
                "zh": "排除原因后加 --resume 重新运行，只重算这些社区",
                "en": "fix the cause, then run the same command with --resume",
            },
        ),
        Cause(
            "too_small",
            True,
            {
                "zh": "社区总户数不足一个网格（下限 {min} 户）",
                "en": "communities too small for one grid (minimum {min} households)",
            },
            {
                "zh": "与相邻社区合并，或降低 --min-households",
                "en": "merge each with a neighbour, or lower --min-households",
            },
        ),
        Cause(
            "oversize_building",
            True,
            {
                "zh": "单栋楼超过上限（{max} 户），自成一个网格",
                "en": "buildings above the maximum ({max} households), each a grid of its own",
            },
            {
                "zh": "按单元/楼门拆分这些楼栋的数据，或提高 --max-households",
                "en": "split these buildings into entrances in the data, or raise "
                "--max-households",
            },
        ),
        Cause(
            "oversize_compound",
            True,
            {
                "zh": "小区超过上限（{max} 户）且楼栋数不详，整体算一个网格",
                "en": "compounds above the maximum ({max} households) with no building "
                "count, each one grid",
            },
            {
                "zh": "补充楼栋数（buildings / 楼栋数 列，或 --compound-buildings-col），"
                "即可按楼号拆分",
                "en": "give their number of buildings (a `buildings` column or "
                "--compound-buildings-col) so they are split by building number",
            },
        ),
        Cause(
            "unreachable",
            True,
            {
                "zh": "已证明无法满足户数标准的区域",
                "en": "areas proved unable to meet the bounds",
            },
            {
                "zh": "与相邻社区合并这些区域，或调整户数上下限",
                "en": "merge these areas with a neighbouring community, or change the bounds",
            },
        ),
        Cause(
            "not_found",
            True,
            {
                "zh": "未找到达标方案的社区（未证明无解）",
                "en": "communities where no plan within the bounds was found (not proved "
                "impossible)",
            },
            {
                "zh": "加大 --time-limit 重新运行；仍不达标则检查边界和户数",
                "en": "run again with a larger --time-limit; if still out of bounds, check "
                "the boundaries and household counts",
            },
        ),
        Cause(
            "no_households",
            True,
            {"zh": "没有住户的社区", "en": "communities without households"},
            {
                "zh": "检查住户文件是否漏了这些社区（坐标系、范围）",
                "en": "check that the households file covers them (coordinates, extent)",
            },
        ),
        Cause(
            "dedicated_outside",
            True,
            {
                "zh": "专属网格地块部分超出社区边界（超出部分未划入网格）",
                "en": "dedicated parcels partly outside every community (that part is "
                "in no grid)",
            },
            {
                "zh": "检查地块文件的坐标系，或扩展社区边界",
                "en": "check the parcels' coordinate system, or extend the community "
                "boundaries",
            },
        ),
        Cause(
            "other",
            True,
            {"zh": "其他说明", "en": "other notes"},
            {},
        ),
        # ---- information: counted, kept in report.json, not listed as problems
        Cause(
            "compound_split",
            False,
            {
                "zh": "超过上限的小区按楼栋拆分到多个网格",
                "en": "big compounds split along building lines into several grids",
            },
        ),
        Cause(
            "compounds_opened",
            False,
            {
                "zh": "为满足户数标准，部分小区的楼栋分入不同网格",
                "en": "communities where compounds were split to meet the bounds",
            },
        ),
        Cause(
            "barrier",
            False,
            {
                "zh": "网格跨越道路/河流等界线（为满足户数标准）",
                "en": "communities with grids across a road, river or wall (to meet the "
                "bounds)",
            },
        ),
        Cause(
            "geometry",
            False,
            {
                "zh": "边界整理（飞地、空地块并入相邻网格、分块求解）",
                "en": "outline tidying (islands and empty blocks joined, pieces solved "
                "separately)",
            },
        ),
        Cause(
            "solver",
            False,
            {"zh": "求解过程说明", "en": "solver remarks"},
        ),
        Cause(
            "dedicated_split",
            False,
            {
                "zh": "跨社区的专属网格地块，每个社区各设一个专属网格",
                "en": "dedicated parcels across communities, one dedicated grid in each",
            },
        ),
    )
}

#: (pattern, cause) in order; the first pattern found in a note decides its cause.
NOTE_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), cause)
    for p, cause in (
        (r"^partitioning community .* failed", "failed"),
        (r"^dedicated parcel .* lie outside every community", "dedicated_outside"),
        (r"^dedicated parcel .* spans communities", "dedicated_split"),
        (r"^community \S+ has \d+ households; a grid needs at least", "too_small"),
        (r"^community \S+ has no households", "no_households"),
        (r"alone has \d+ households > \d+", "oversize_building"),
        (r"^\d+ unit\(s\) above max_households form grids", "solver"),
        (r"^compound .* and no known number of buildings", "oversize_compound"),
        (r"^proved", "unreachable"),
        (r"^no contiguous plan within the bounds was found", "not_found"),
        (r"^compound .* is split into \d+ grids", "compound_split"),
        (r"^keeping every compound whole could not meet the bounds", "compounds_opened"),
        (r"barrier", "barrier"),
        (r"island\(s\)|block\(s\) between barriers or compound walls|separate pieces", "geometry"),
        (r"CP-SAT|warm start|large-neighbourhood|soft bounds|multilevel", "solver"),
    )
)


#: ``infeasible_reason`` of a community (report.json) -> its cause.
_REASON_CAUSES = {
    "below_min": "too_small",
    "oversize_building": "oversize_building",
    "oversize_compound": "oversize_compound",
    "bounds_unreachable": "unreachable",
}


@dataclass(frozen=True)
class Finding:
    """One note of one community, sorted into a cause."""

    cause: str
    community_id: str
    community_name: str
    note: str
    subject: str | None = None
    households: int | None = None


def _note_cause(note: str) -> str:
    for pattern, cause in NOTE_CAUSES:
        if pattern.search(note):
            return cause
    return "other"


_SUBJECT = (
    re.compile(r"^compound (?P<s>.+?) \((?P<h>\d+) households"),
    re.compile(r"^compound (?P<s>.+?) has (?P<h>\d+) households"),
    re.compile(r"^building (?P<s>.+?) alone has (?P<h>\d+) households"),
    re.compile(r"^the building of household (?P<s>row .+?) alone has (?P<h>\d+) households"),
    re.compile(r"^(?P<s>unit \d+) alone has (?P<h>\d+) households"),
    re.compile(r"^community \S+ has (?P<h>\d+) households"),
)


def _subject(note: str) -> tuple[str | None, int | None]:
    for pattern in _SUBJECT:
        m = pattern.search(note)
        if m:
            groups = m.groupdict()
            return groups.get("s"), int(groups["h"]) if groups.get("h") else None
    return None, None


def findings(report: Mapping[str, Any]) -> list[Finding]:
    """Every note of every community of a ``report.json``, sorted into causes.

    A community whose grids are not all in bounds without any note explaining why
    gets a ``not_found`` finding, so it is never missed.

    Parameters
    ----------
    report
        A report of ``partition`` or ``regenerate`` (``communities`` with ``notes``).

    Returns
    -------
    list of Finding
        In community order, notes in their order; the same note of one community
        is kept once.
    """
    out: list[Finding] = []
    for c in report.get("communities", []):
        cid, name = str(c.get("community_id", "")), str(c.get("community_name") or "")
        seen: set[str] = set()
        causes: set[str] = set()
        for note in c.get("notes") or []:
            note = str(note)
            if note in seen:
                continue
            seen.add(note)
            cause = _note_cause(note)
            causes.add(cause)
            subject, households = _subject(note)
            out.append(Finding(cause, cid, name, note, subject, households))
        explained = causes & {k for k, v in CAUSES.items() if v.action}
        if c.get("bounds_met") is False and not explained:
            # no note says why (a regenerated community whose grids were kept): the
            # community's infeasible_reason does, else no plan in bounds was found
            cause = _REASON_CAUSES.get(str(c.get("infeasible_reason")), "not_found")
            out.append(
                Finding(
                    cause,
                    cid,
                    name,
                    f"{c.get('grids', 0) - c.get('grids_in_bounds', 0)} grid(s) out of bounds"
                    + (f" ({c['infeasible_reason']})" if c.get("infeasible_reason") else ""),
                    households=c.get("households") if cause == "too_small" else None,
                )
            )
    return out


def attention(report: Mapping[str, Any]) -> dict[str, list[Finding]]:
    """The findings that need a person's action, grouped by cause (in :data:`CAUSES` order).

    Parameters
    ----------
    report
        A ``report.json`` dict.

    Returns
    -------
    dict
        Cause key -> its findings; causes without findings are left out.
    """
    grouped: dict[str, list[Finding]] = {}
    for f in findings(report):
        if CAUSES[f.cause].action:
            grouped.setdefault(f.cause, []).append(f)
    return {k: grouped[k] for k in CAUSES if k in grouped}


def pct_text(part: int, whole: int) -> str:
    """``part / whole`` in % with one decimal, rounded down (99.96 is "99.9", never "100.0").

    Examples
    --------
    >>> pct_text(1999, 2000), pct_text(0, 0), pct_text(3, 3)
    ('99.9', '0.0', '100.0')
    """
    if whole <= 0:
        return "0.0"
    pct = Decimal(part) * 100 / Decimal(whole)
    return str(pct.quantize(Decimal("0.1"), rounding=ROUND_DOWN))


def count_in_bounds(grids_by_status: Mapping[str, int]) -> tuple[int, int]:
    """``(grids in bounds, grids with bounds)`` from a count of grids per status.

    Dedicated grids (专属网格, :data:`gridkit.contracts.UNBOUNDED_STATUSES`) have no
    household bounds: they are in neither count.
    """
    total = int(
        sum(n for s, n in grids_by_status.items() if s not in UNBOUNDED_STATUSES)
    )
    inside = int(sum(n for s, n in grids_by_status.items() if s in IN_BOUNDS_STATUSES))
    return inside, total


def headline(grids_by_status: Mapping[str, int], *, lang: Lang = "zh") -> str:
    """The one headline: grids in bounds among all grids, then the others by reason.

    Parameters
    ----------
    grids_by_status
        Grids per status (``report["totals"]["grids_by_status"]``).
    lang
        {"zh", "en"}

    Returns
    -------
    str

    Examples
    --------
    >>> headline({"ok": 340, "split_compound": 6, "oversize_compound": 134}, lang="en")
    'in bounds: 346 of 480 grids (72.0 %); others: 134 oversize compound (buildings unknown)'
    >>> headline({"ok": 4}, lang="zh")
    '户数达标：4 个网格中 4 个（100.0 %）'
    >>> headline({"ok": 4, "dedicated": 3}, lang="en")
    'in bounds: 4 of 4 grids (100.0 %); plus 3 dedicated grids'
    """
    inside, total = count_in_bounds(grids_by_status)
    words = STATUS_WORDS[lang]
    others = [
        (s, n) for s, n in sorted(grids_by_status.items(), key=lambda kv: (-kv[1], kv[0]))
        if s not in IN_BOUNDS_STATUSES and s not in UNBOUNDED_STATUSES and n
    ]  # fmt: skip
    apart = int(sum(grids_by_status.get(s, 0) for s in UNBOUNDED_STATUSES))
    pct = pct_text(inside, total)
    if lang == "zh":
        text = f"户数达标：{total} 个网格中 {inside} 个（{pct} %）"
        if others:
            text += "；其余：" + "，".join(f"{words.get(s, s)} {n} 个" for s, n in others)
        if apart:
            text += f"；另有专属网格 {apart} 个"
        return text
    text = f"in bounds: {inside} of {total} grids ({pct} %)"
    if others:
        text += "; others: " + ", ".join(f"{n} {words.get(s, s)}" for s, n in others)
    if apart:
        text += f"; plus {apart} dedicated grid{'s' if apart > 1 else ''}"
    return text


def _item(f: Finding, lang: Lang) -> str:
    """One line of a cause: the community by name, the compound/building and households."""
    place = f.community_name or f.community_id
    if f.community_name and f.community_name != f.community_id:
        place += f"（{f.community_id}）" if lang == "zh" else f" ({f.community_id})"
    hh = f.households
    if f.cause == "too_small":
        return place + (f"：{hh} 户" if lang == "zh" else f": {hh} households") if hh else place
    if f.cause in ("oversize_building", "oversize_compound") and f.subject:
        compound = f.cause == "oversize_compound"
        row = re.fullmatch(r"row (\S+)", f.subject)  # known only by its input row
        if lang == "zh":
            kind = "小区" if compound else "楼栋"
            what = f"住户文件第 {row.group(1)} 行的{kind}" if row else f"{kind} {f.subject}"
            return f"{place}：{what}（{hh} 户）"
        kind = "compound" if compound else "building"
        what = f"the {kind} in row {row.group(1)} of the households file" if row else (
            f"{kind} {f.subject}"
        )
        return f"{place}: {what} ({hh} households)"
    if f.cause in ("no_households", "oversize_building", "oversize_compound"):
        return place  # (an oversize unit without a note naming it: the community alone)
    if f.cause == "unreachable":
        m = re.search(r"(\d+) households (?:in buildings|cannot)|piece of (\d+) households", f.note)
        amount = next((v for v in m.groups() if v), None) if m else None
        if lang == "zh":
            what = f"其中 {amount} 户" if amount else "区域内住户"
            return f"{place}：{what}无法分成户数达标且连片的网格（已证明，详见 report.json）"
        what = f"{amount} households" if amount else "its households"
        return (
            f"{place}: {what} cannot form contiguous grids within the bounds (proved; "
            "details in report.json)"
        )
    if f.cause == "not_found":
        return f"{place}：未找到达标方案" if lang == "zh" else f"{place}: no plan in bounds found"
    return f"{place}：{f.note}" if lang == "zh" else f"{place}: {f.note}"


def attention_lines(
    report: Mapping[str, Any], *, lang: Lang = "zh", limit: int = 12, indent: str = "  "
) -> list[str]:
    """The "needing attention" list: each cause once, what to do, then its items.

    Parameters
    ----------
    report
        A ``report.json`` dict (``parameters`` gives the bounds).
    lang
        {"zh", "en"}
    limit
        Items listed per cause; the rest are counted ("… and 12 more").
    indent
        Prefix of every line.

    Returns
    -------
    list of str
        Empty when nothing needs attention.
    """
    groups = attention(report)
    if not groups:
        return []
    params = report.get("parameters", {})
    fmt = {"min": params.get("min_households", "?"), "max": params.get("max_households", "?")}
    n_items = sum(len(v) for v in groups.values())
    lines = [
        f"{indent}需要处理（{len(groups)} 类，{n_items} 处）："
        if lang == "zh"
        else f"{indent}needing attention ({len(groups)} causes, {n_items} items):"
    ]
    for key, items in groups.items():
        cause = CAUSES[key]
        title = cause.title[lang].format(**fmt)
        todo = cause.todo.get(lang, "").format(**fmt)
        sep = "：" if lang == "zh" else ": "
        count = f"（{len(items)}）" if lang == "zh" else f" ({len(items)})"
        lines.append(f"{indent}  {title}{count}" + (f"{sep}{todo}" if todo else ""))
        for f in items[:limit]:
            lines.append(f"{indent}    {_item(f, lang)}")
        if len(items) > limit:
            rest = len(items) - limit
            lines.append(
                f"{indent}    …… 另有 {rest} 处（见 report.json）"
                if lang == "zh"
                else f"{indent}    … and {rest} more (report.json)"
            )
    return lines


def information_line(
    report: Mapping[str, Any], *, lang: Lang = "zh", indent: str = "  "
) -> str | None:
    """One line counting the notes that are information only (``None`` when there are none)."""
    counts: dict[str, set[tuple[str, str]]] = {}
    for f in findings(report):
        if not CAUSES[f.cause].action:
            counts.setdefault(f.cause, set()).add((f.community_id, f.subject or f.note))
    if not counts:
        return None
    parts = []
    for key in CAUSES:
        if key in counts:
            title = CAUSES[key].title[lang]
            parts.append(f"{title} {len(counts[key])}" if lang == "zh" else
                         f"{title}: {len(counts[key])}")  # fmt: skip
    if lang == "zh":
        return f"{indent}仅供参考（无需处理，详见 report.json）：" + "；".join(parts)
    return f"{indent}for information (no action needed; details in report.json): " + "; ".join(
        parts
    )
