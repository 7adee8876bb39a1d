"""Code tables of the data elements, as data: one table per code system, (zh, en) per code.

The card stores codes (sex '2', ethnicity 01, category '3'); people read names. Keeping the
tables here, apart from the codecs, lets the CLI, the simulator's personas and the checks in
``identity`` share one copy. Lookups return ``(zh, en)`` or None for an unknown code: an unknown
code read from a card is shown with a warning by the caller, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class CodeTable:
    """A fixed-width code system: ``width`` digits/characters per code, (zh, en) per code."""

    title: str
    width: int
    entries: Mapping[str, tuple[str, str]]

    def normalise(self, code: str | int) -> str:
        """Integers are zero-padded to the table's width (algorithm id 3 → "03")."""
        if isinstance(code, int):
            return f"{code:0{self.width}d}"
        return code.strip()

    def lookup(self, code: str | int | None) -> tuple[str, str] | None:
        """(zh, en) for ``code``, or None when the code is unknown or absent."""
        if code is None:
            return None
        return self.entries.get(self.normalise(code))

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str | int) and self.lookup(code) is not None

    def codes(self) -> tuple[str, ...]:
        """All codes, in the order the standard lists them."""
        return tuple(self.entries)


def _table(title: str, width: int, rows: tuple[tuple[str, str, str], ...]) -> CodeTable:
    return CodeTable(title, width, MappingProxyType({c: (zh, en) for c, zh, en in rows}))


# GB/T 2261.1-2003 (personal sex); the card stores it as one ASCII character (EF06 tag 0A).
SEX = _table("性别 sex (GB/T 2261.1)", 1, (
    ("0", "未知的性别", "not known"),
    ("1", "男", "male"),
    ("2", "女", "female"),
    ("9", "未说明的性别", "not stated"),
))

# GB/T 3304-1991, names of the nationalities of China in romanisation with codes; stored as
# one BCD byte (EF06 tag 0B). 97/98 are the standard's two catch-all codes.
ETHNICITY = _table("民族 ethnicity (GB/T 3304)", 2, (
    ("01", "汉族", "Han"),
    ("02", "蒙古族", "Mongol"),
    ("03", "回族", "Hui"),
    ("04", "藏族", "Zang"),
    ("05", "维吾尔族", "Uygur"),
    ("06", "苗族", "Miao"),
    ("07", "彝族", "Yi"),
    ("08", "壮族", "Zhuang"),
    ("09", "布依族", "Buyei"),
    ("10", "朝鲜族", "Chosen"),
    ("11", "满族", "Man"),
    ("12", "侗族", "Dong"),
    ("13", "瑶族", "Yao"),
    ("14", "白族", "Bai"),
    ("15", "土家族", "Tujia"),
    ("16", "哈尼族", "Hani"),
    ("17", "哈萨克族", "Kazak"),
    ("18", "傣族", "Dai"),
    ("19", "黎族", "Li"),
    ("20", "傈僳族", "Lisu"),
    ("21", "佤族", "Va"),
    ("22", "畲族", "She"),
    ("23", "高山族", "Gaoshan"),
    ("24", "拉祜族", "Lahu"),
    ("25", "水族", "Sui"),
    ("26", "东乡族", "Dongxiang"),
    ("27", "纳西族", "Naxi"),
    ("28", "景颇族", "Jingpo"),
    ("29", "柯尔克孜族", "Kirgiz"),
    ("30", "土族", "Tu"),
    ("31", "达斡尔族", "Daur"),
    ("32", "仫佬族", "Mulao"),
    ("33", "羌族", "Qiang"),
    ("34", "布朗族", "Blang"),
    ("35", "撒拉族", "Salar"),
    ("36", "毛南族", "Maonan"),
    ("37", "仡佬族", "Gelao"),
    ("38", "锡伯族", "Xibe"),
    ("39", "阿昌族", "Achang"),
    ("40", "普米族", "Pumi"),
    ("41", "塔吉克族", "Tajik"),
    ("42", "怒族", "Nu"),
    ("43", "乌孜别克族", "Uzbek"),
    ("44", "俄罗斯族", "Russ"),
    ("45", "鄂温克族", "Ewenki"),
    ("46", "德昂族", "Deang"),
    ("47", "保安族", "Bonan"),
    ("48", "裕固族", "Yugur"),
    ("49", "京族", "Gin"),
    ("50", "塔塔尔族", "Tatar"),
    ("51", "独龙族", "Derung"),
    ("52", "鄂伦春族", "Oroqen"),
    ("53", "赫哲族", "Hezhen"),
    ("54", "门巴族", "Monba"),
    ("55", "珞巴族", "Lhoba"),
    ("56", "基诺族", "Jino"),
    ("97", "其他", "other"),
    ("98", "外国血统中国籍人士", "Chinese citizen of foreign origin"),
))

# 卡的类别, EF05 tag 02, one ASCII character; '3' where a region does not differentiate.
CARD_CATEGORY = _table("卡的类别 card category", 1, (
    ("1", "学龄前儿童", "pre-school child"),
    ("2", "学生", "student"),
    ("3", "成年人", "adult"),
    ("4", "老年人", "senior"),
))

# Algorithm id from the SSSE FCI (9F0C / 86 01 xx); decides the PSAM DDF and the block size.
ALGORITHM = _table("算法标识 algorithm id", 2, (
    ("01", "DES/3DES", "DES/3DES (8-byte blocks)"),
    ("02", "SSF33", "SSF33 (16-byte blocks)"),
    ("03", "SM4", "SM4 (16-byte blocks)"),
))

# 规范版本 (EF05 tag 03) is judged by its first three characters; see spec_version_key().
SPEC_VERSION = _table("规范版本 spec version", 3, (
    ("1.0", "1.0 版规范 (LB002-2000)", "spec 1.0 (LB002-2000)"),
    ("2.0", "2.0 版规范 (文件结构和数据项 V2.0)", "spec 2.0 (file structure and data items V2.0)"),
    ("3.0", "3.0 版规范 (第三代社会保障卡)", "spec 3.0 (third-generation card)"),
))

# Full version strings written by issuers; other values are read but flagged.
KNOWN_SPEC_VERSIONS: tuple[str, ...] = ("1.00", "2.00", "2.01", "3.00")

# GB/T 2260 province-level divisions: the first two digits of every region code.
PROVINCE = _table("省级行政区 province-level division (GB/T 2260)", 2, (
    ("11", "北京市", "Beijing"),
    ("12", "天津市", "Tianjin"),
    ("13", "河北省", "Hebei"),
    ("14", "山西省", "Shanxi"),
    ("15", "内蒙古自治区", "Inner Mongolia"),
    ("21", "辽宁省", "Liaoning"),
    ("22", "吉林省", "Jilin"),
    ("23", "黑龙江省", "Heilongjiang"),
    ("31", "上海市", "Shanghai"),
    ("32", "江苏省", "Jiangsu"),
    ("33", "浙江省", "Zhejiang"),
    ("34", "安徽省", "Anhui"),
    ("35", "福建省", "Fujian"),
    ("36", "江西省", "Jiangxi"),
    ("37", "山东省", "Shandong"),
    ("41", "河南省", "Henan"),
    ("42", "湖北省", "Hubei"),
    ("43", "湖南省", "Hunan"),
    ("44", "广东省", "Guangdong"),
    ("45", "广西壮族自治区", "Guangxi"),
    ("46", "海南省", "Hainan"),
    ("50", "重庆市", "Chongqing"),
    ("51", "四川省", "Sichuan"),
    ("52", "贵州省", "Guizhou"),
    ("53", "云南省", "Yunnan"),
    ("54", "西藏自治区", "Xizang (Tibet)"),
    ("61", "陕西省", "Shaanxi"),
    ("62", "甘肃省", "Gansu"),
    ("63", "青海省", "Qinghai"),
    ("64", "宁夏回族自治区", "Ningxia"),
    ("65", "新疆维吾尔自治区", "Xinjiang"),
    ("71", "台湾省", "Taiwan"),
    ("81", "香港特别行政区", "Hong Kong"),
    ("82", "澳门特别行政区", "Macao"),
))

# ID-number prefixes that are not GB/T 2260 provinces but are issued in 18-digit GB 11643 form:
# residence permits for Hong Kong, Macao and Taiwan residents (810000 / 820000 / 830000).
ID_ONLY_PREFIX = _table("居住证号码前缀 residence-permit ID prefix", 2, (
    ("83", "台湾居民居住证", "residence permit for Taiwan residents"),
))


def sex(code: str | int | None) -> tuple[str, str] | None:
    """(zh, en) of a GB/T 2261.1 sex code, or None."""
    return SEX.lookup(code)


def ethnicity(code: str | int | None) -> tuple[str, str] | None:
    """(zh, en) of a GB/T 3304 ethnicity code ("01" or 1), or None."""
    return ETHNICITY.lookup(code)


def card_category(code: str | int | None) -> tuple[str, str] | None:
    """(zh, en) of a 卡的类别 code, or None."""
    return CARD_CATEGORY.lookup(code)


def algorithm(code: str | int | None) -> tuple[str, str] | None:
    """(zh, en) of an SSSE algorithm id (1, "01" or "1" all name DES/3DES), or None."""
    if isinstance(code, str) and len(code.strip()) == 1:
        code = code.strip().zfill(2)
    return ALGORITHM.lookup(code)


def spec_version_key(version: str | None) -> str:
    """The part of 规范版本 that decides behaviour: its first three characters.

    An empty version means a 1.0x card (spec §3.1, reader interface §10.2).
    """
    text = (version or "").strip("\x00 ")
    return text[:3] if text else "1.0"


def spec_version(version: str | None) -> tuple[str, str] | None:
    """(zh, en) for a 规范版本 as read ("2.0\\0", "3.00", empty), or None if unknown."""
    return SPEC_VERSION.lookup(spec_version_key(version))


def province(code: str | int | None) -> tuple[str, str] | None:
    """(zh, en) of the province a region code (2 or more digits, e.g. "510100") belongs to."""
    if code is None:
        return None
    text = PROVINCE.normalise(code)
    return PROVINCE.lookup(text[:2]) if len(text) >= 2 else None
