"""The application DFs DF01–DF07 under the SSSE as data: files, access keys, data items.

Source (one for every row below unless the row says otherwise): 人社信息函〔2012〕37号
《社会保障卡文件结构和数据项(V2.0)》, public copy in gdgly/SI_3rdCard
``docs/社保卡指令文档资料_银海提供/关于印发社会保障卡文件结构和数据项（V2.0）的通知.pdf``
(read with ``pdftotext -layout``): table 2 (AIDs), tables 4–8 (file attributes: FID, SFI,
read and write control, structure), table 9 (data items: tag, type, length, file), appendix B
tables B1–B8 (DF05 生命与健康, DF06 社会救助与优待抚恤 — an *informative* appendix: regions
may carry them, selected by application label since they have no RID).

Card key IDs (EXTERNAL AUTHENTICATE P2) come from part 9 appendix B table B1 (PSAM 卡内国家级
密钥与用户卡内密钥标识对照表) where it lists them; the notice added keys that table does not
know (RK1DF01, RK1DF02, UK6DF01–UKBDF01, UK6DF02, UK4DF03–UK8DF03, the DF05/DF06/DF07 keys).
Their card key IDs have no public source: ``DfKey.assumed`` marks them, the value continues
the DF's numbering, and docs/spec-uncertainties.md has the row. PSAM key (usage, ID) and HSM
logical addresses are from the Sichuan reader interface spec appendix B tables B.1/B.2
(gdgly/SI_3rdCard ``docs/3-四川省…社会保障卡读写机具规范.pdf``), three consecutive addresses
per key = key versions 1–3.

Record files hold one SIMPLE-TLV per record, record identifier = tag (as in the SSSE files);
a tag listed several times (学位信息 ``40`` ×3) is several records with the same identifier,
addressed as ``40:2`` (national pFileAddr, the second record with that identifier). B-TLV items
carry sub-items as TLVs in their value (``SUBITEMS``). Cyclic files hold fixed-size records
without tags whose items are laid out by position (``RECORD_FIELDS``); the notice gives the
minimum record count ("至少 N 条记录"), which is ``record_count`` here.

Empty fields: cn right-padded with F, an with 00 (notice §7), as for the SSSE files.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from sbcard.card.elements import DataElement
from sbcard.card.filesystem import RID_MOHRSS, Access, DfSpec, EfSpec, Structure
from sbcard.errors import BadInputError

NOTICE = "人社信息函〔2012〕37号"


@dataclass(frozen=True)
class DfKey:
    """A DF-level card key: its name in the spec tables and where each party keeps it."""

    name: str                  # "RK1DF01"
    card_key_id: int           # P2 of EXTERNAL AUTHENTICATE inside the DF (b8 = 1: DF key)
    assumed: bool              # True: no public source for card_key_id (continues the DF's IDs)
    psam: tuple[int, int] | None = None   # (usage 类别, ID 标识) in the PSAM, SI appendix B
    hsm: int | None = None     # first HSM logical address (version 1); +1, +2 = versions 2, 3

    @property
    def df(self) -> str:
        return self.name[-4:]

    @property
    def ref(self) -> int:
        """The key's reference in key sources: ``key_ref(df, card_key_id)``."""
        return key_ref(self.df, self.card_key_id)


def key_ref(df: str, card_key_id: int) -> int:
    """One integer for a card key in a key source: SSSE keys are their ID (00–0A); a DF key
    is ``DF number << 8 | ID`` (RK1DF03 = 0x384), because DF key IDs repeat across DFs."""
    if df in ("SSSE", "MF", ""):
        return card_key_id
    return (int(df[2:], 16) << 8) | card_key_id


def card_key_id(ref: int) -> int:
    """The P2 byte the card knows a key reference by (the DF it belongs to is the current one)."""
    return ref & 0xFF


#: Names of the SSSE keys by card key ID (part 9 table B1, sscard-spec §5.2), for messages.
SSSE_KEY_NAMES = MappingProxyType({0x00: "IRK", 0x02: "STK", 0x04: "UKSSSE", 0x05: "BK",
                                   0x06: "PUK", 0x0A: "RKSSSE"})


def ref_name(ref: int) -> str:
    """``RK1DF03`` for a DF key reference, ``RKSSSE (0A)`` for a named SSSE key, ``key 0D``
    otherwise (for messages)."""
    key = KEY_BY_REF.get(ref)
    if key is not None:
        return key.name
    if ref in SSSE_KEY_NAMES:
        return f"{SSSE_KEY_NAMES[ref]} ({ref:02X})"
    return f"key {ref:02X}"


def _k(name: str, kid: int, psam: str | None = None, hsm: int | None = None,
       assumed: bool = False) -> DfKey:
    usage_id = None
    if psam:
        usage, ident = psam.split("/")
        usage_id = (int(usage, 16), int(ident, 16))
    return DfKey(name, kid, assumed, usage_id, hsm)


#: Part 9 table B1 gives 82 (STK), 83 (LK) and the IDs not marked assumed; psam/hsm from SI B.1
#: (national keys, usage 07/08) and B.2 (provincial keys).
DF_KEYS: tuple[DfKey, ...] = (
    # DF01 公共应用
    _k("UK1DF01", 0x83, "08/42", 0x0097), _k("UK2DF01", 0x84, "08/43", 0x009A),
    _k("UK3DF01", 0x85, "07/24", 0x0176), _k("UK4DF01", 0x86, "07/25", 0x0179),
    _k("UK5DF01", 0x87, "08/44", 0x009D),
    _k("UK6DF01", 0x88, "07/2F", 0x0052, True), _k("UK7DF01", 0x89, "07/30", 0x0055, True),
    _k("UK8DF01", 0x8A, "07/31", 0x0058, True), _k("UK9DF01", 0x8B, "07/32", 0x005B, True),
    _k("UKADF01", 0x8C, "07/33", 0x005E, True), _k("UKBDF01", 0x8D, "07/34", 0x0061, True),
    _k("RK1DF01", 0x8E, "07/2E", 0x004F, True),
    # DF02 就业与失业
    _k("UK1DF02", 0x83, "07/26", 0x0187), _k("UK2DF02", 0x84, "08/45", 0x00A0),
    _k("UK3DF02", 0x85, "08/46", 0x00A3), _k("UK4DF02", 0x86, "07/27", 0x018A),
    _k("UK5DF02", 0x87, "07/28", 0x018D),
    _k("UK6DF02", 0x88, "07/36", 0x0067, True), _k("RK1DF02", 0x89, "07/35", 0x0064, True),
    # DF03 社会保险1
    _k("RK1DF03", 0x84, "07/2B", 0x0193), _k("RK2DF03", 0x85, "07/2C", 0x0196),
    _k("UK1DF03", 0x86, "08/47", 0x00A6), _k("UK2DF03", 0x87, "07/29", 0x0190),
    _k("UK3DF03", 0x88, "08/48", 0x00A9),
    _k("UK4DF03", 0x89, "07/37", 0x006A, True), _k("UK5DF03", 0x8A, "07/38", 0x006D, True),
    _k("UK6DF03", 0x8B, "07/39", 0x0070, True), _k("UK7DF03", 0x8C, "07/3A", 0x0073, True),
    _k("UK8DF03", 0x8D, "07/3B", 0x0076, True),
    # DF04 社会保险2 (医疗)
    _k("RK1DF04", 0x84, "07/2D", 0x0182), _k("UK1DF04", 0x85, "08/49", 0x00AC),
    _k("UK2DF04", 0x86, "07/2A", 0x017C),
    # DF05 生命与健康 (appendix B), DF06 社会救助与优待抚恤 (appendix B: no PSAM/HSM entry)
    _k("UK1DF05", 0x83, "07/B4", 0x008D, True),
    _k("UK1DF06", 0x83, None, None, True), _k("UK2DF06", 0x84, None, None, True),
    _k("RK1DF06", 0x85, None, None, True),
    # DF07 人事与人才 (order of SI table B.1: RK1, UK1, RK2, UK2, RK3, UK3)
    _k("RK1DF07", 0x83, "07/3D", 0x007A, True), _k("UK1DF07", 0x84, "07/3E", 0x007D, True),
    _k("RK2DF07", 0x85, "07/3F", 0x0080, True), _k("UK2DF07", 0x86, "07/B0", 0x0083, True),
    _k("RK3DF07", 0x87, "07/B1", 0x0086, True), _k("UK3DF07", 0x88, "07/B2", 0x0089, True),
)
KEY_BY_NAME = MappingProxyType({k.name: k for k in DF_KEYS})
KEY_BY_REF = MappingProxyType({k.ref: k for k in DF_KEYS})


def _access(rule: str, df: str) -> Access:
    """The notice's wording → Access: "PIN 或 RK1" → pin|key:xx, "PIN & RK1" → pin&key:xx."""
    rule = rule.strip()
    if rule in ("无", ""):
        return Access()
    if rule == "不允许改写":
        return Access(never=True)
    parts = []
    for alt in rule.split(" 或 "):
        both = [p.strip() for p in alt.split("&")]
        names = []
        for p in both:
            names.append("pin" if p == "PIN" else f"key:{KEY_BY_NAME[p + df].card_key_id:02X}")
        parts.append("&".join(names) if len(names) == 2 else names[0])
    return Access.parse("|".join(parts))


V, F, C, T = (Structure.VARIABLE_RECORDS, Structure.FIXED_RECORDS, Structure.CYCLIC,
              Structure.TRANSPARENT)


def _ef(df: str, fid: str, zh: str, en: str, read: str, write: str, structure: Structure,
        tags: str = "", *, size: int = 0, record_size: int = 0, record_count: int = 0
        ) -> EfSpec:
    return EfSpec(fid, int(fid[2:], 16) | 0xEF00, int(fid[2:], 16), structure, zh, en,
                  _access(read, df), _access(write, df), size=size,
                  tags=tuple(int(t, 16) for t in tags.split()), record_size=record_size,
                  record_count=record_count)


def _df(name: str, aid: bytes, zh: str, en: str, *efs: EfSpec) -> DfSpec:
    return DfSpec(name, int(name, 16), aid, zh, en, children=efs)


# Tag lists are the records a personalised file holds, in table 9's order (notice §7); the
# read/write texts are tables 4–8 verbatim.
DF01 = _df("DF01", RID_MOHRSS + b"\x00", "公共应用", "public application",
    _ef("DF01", "EF05", "户籍信息文件", "household registration", "PIN 或 RK1", "UK1", V,
        "20 21 0E"),
    _ef("DF01", "EF06", "常住地信息文件", "residence", "PIN 或 RK1", "UK4", V,
        "23 24 28 2C 2D"),
    _ef("DF01", "EF07", "个人状况信息文件", "personal status", "PIN 或 RK1", "UK2", V, "29"),
    _ef("DF01", "EF08", "婚姻状况信息文件", "marital status", "PIN 或 RK1", "UK3", V, "2B"),
    _ef("DF01", "EF09", "人员身份及就业单位信息文件", "identity and employer", "PIN 或 RK1",
        "UK2", V, "2E 30 32"),
    _ef("DF01", "EF0A", "国籍及政治面貌信息文件", "nationality and political status",
        "PIN 或 RK1", "UK5", V, "37 38 39"),
    _ef("DF01", "EF15", "学历信息文件", "education", "PIN 或 RK1", "UK6", V, "2A 40 40 40"),
    *(_ef("DF01", f"EF{n:02X}", f"预留信息文件{n - 0x15}", f"reserved file {n - 0x15}", "无",
          f"UK{'6789AB'[n - 0x15]}", T, size=0x128) for n in range(0x16, 0x1B)),
)
DF02 = _df("DF02", RID_MOHRSS + b"\x01", "就业与失业", "employment and unemployment",
    _ef("DF02", "EF05", "职业和专业技能信息文件", "occupation and skills", "PIN 或 RK1",
        "UK1", V, "42 41 43 43 44 44"),
    _ef("DF02", "EF06", "就业状况信息文件", "employment status", "PIN 或 RK1", "UK2", V,
        "4C 4B 4D 60 4F 50 3A"),
    _ef("DF02", "EF07", "就业记录信息文件", "employment records", "PIN 或 RK1", "UK3", C,
        record_size=0x55, record_count=4),
    _ef("DF02", "EF09", "就业失业登记证信息文件", "employment registration certificate",
        "PIN 或 RK1", "UK4", V, "55 56 96 97"),
    _ef("DF02", "EF15", "就业援助对象认定信息文件", "employment assistance", "PIN 或 RK1",
        "UK5", V, "99 99 99 99 0F 1F"),
    _ef("DF02", "EF16", "就业扶持政策享受信息文件", "employment support received",
        "PIN 或 RK1", "UK6", C, record_size=0x12, record_count=4),
)
DF03 = _df("DF03", RID_MOHRSS + b"\x02", "社会保险1", "social insurance 1",
    _ef("DF03", "EF05", "失业保险信息文件", "unemployment insurance", "PIN 或 RK2", "UK1", V,
        "61 60 98 62 63 64 65 66"),
    _ef("DF03", "EF06", "劳动能力鉴定信息文件", "work ability assessment", "PIN 或 RK1",
        "UK2", V, "45 46 47 48 49 67 6B 4A 4A 4A"),
    _ef("DF03", "EF07", "养老保险信息文件", "pension insurance", "PIN 或 RK1", "UK3", V,
        "70 71 6E 6C 6F 73"),
    _ef("DF03", "EF15", "工伤保险信息文件", "work injury insurance", "PIN 或 RK1", "UK4", V,
        "7A 7B 7C"),
    _ef("DF03", "EF16", "生育保险信息文件", "maternity insurance", "PIN 或 RK1", "UK5", V,
        "51 5F"),
    _ef("DF03", "EF17", "工伤认定信息文件", "work injury determination", "PIN 或 RK1", "UK6",
        V, "3B 3C 3D 3E 3F"),
    _ef("DF03", "EF18", "供养亲属信息文件", "dependent relatives", "PIN 或 RK1", "UK7", V,
        "74 75 76 77 78"),
    _ef("DF03", "EF19", "参保凭证信息文件", "insurance certificates", "PIN 或 RK1", "UK8", F,
        "79 79 79 79", record_size=0x27 + 2, record_count=4),
)
DF04 = _df("DF04", RID_MOHRSS + b"\x03", "社会保险2", "social insurance 2 (medical)",
    _ef("DF04", "EF05", "医疗保险基本信息文件", "medical insurance", "PIN 或 RK1", "UK1", V,
        "81 84 87 8C 80 8B 8A 83 86 89 7D 7E 7F 8D 8E 8F"),
    _ef("DF04", "EF06", "医疗保险临时脱网结算信息文件", "temporary offline settlement",
        "PIN & RK1", "UK2", V, "90 92 93"),
    # table 7: read PIN, write "不允许改写" — written only by the COS's own medical purse
    _ef("DF04", "EF08", "医疗交易明细文件", "medical transactions", "PIN", "不允许改写", C,
        record_size=0x1C, record_count=30),
    _ef("DF04", "EF15", "特殊医疗结算记录文件", "special medical settlements", "PIN 或 RK1",
        "UK2", C, record_size=0x03, record_count=8),
)
# Appendix B: no RID, selected by application label (notice §5.1, table B1), FIDs DF05/DF06.
DF05 = _df("DF05", "生命与健康信息区".encode("gbk"), "生命与健康", "life and health",
    _ef("DF05", "EF05", "生命与健康数据文件", "health data", "无", "UK1", V,
        "A0 A1 B9 A2 A9 A3 A3 A3 A3 A3 A4 A4 A4 A4 A4 BA BB AA AB AC AD AE AF B0 B1 B2 B3 B4 "
        "B5 B6 B7 BC B8"),
)
DF06 = _df("DF06", "救助与优抚信息区".encode("gbk"), "社会救助与优待抚恤",
           "social assistance and special care",
    _ef("DF06", "EF05", "社会救助信息数据文件", "social assistance", "RK1", "UK1", V,
        "C0 C2 C3 C4 C5"),
    _ef("DF06", "EF06", "优待抚恤信息数据文件", "special care", "RK1", "UK2", V,
        "C6 C8 C9 CA CB CC CD CE CF D0 D1 D2 D3 D4 D5 D6 D7 D8 D9 DA DB DC DD DE DF E0 E1 E2"),
)
DF07 = _df("DF07", RID_MOHRSS + b"\x04", "人事与人才", "personnel and talent",
    _ef("DF07", "EF05", "荣誉信息文件", "honours", "RK1", "UK1", V, "F0 F1 F2 F3 F4"),
    _ef("DF07", "EF06", "专家信息文件", "experts", "RK2", "UK2", V, "F5 F6 F7"),
    _ef("DF07", "EF07", "军队转业干部信息文件", "demobilised officers", "RK3", "UK3", V,
        "F8 F9"),
)

DFS: tuple[DfSpec, ...] = (DF01, DF02, DF03, DF04, DF05, DF06, DF07)
DF_BY_NAME = MappingProxyType({d.name: d for d in DFS})


def _e(file: str, tag: int, key: str, zh: str, en: str, fmt: str, length: int) -> DataElement:
    return DataElement(tag, key, zh, en, fmt, length, file)


# (tag, key, 中文, English, format, length) per file: notice table 9 / appendix B. Dates of
# 4 bytes cn are the "date" codec (YYYYMMDD); "b" holds B-TLV values (sub-items below).
_ITEMS: dict[str, tuple[tuple[int, str, str, str, str, int], ...]] = {
    "DF01EF05": ((0x20, "hukou_type", "户口类别", "Household type", "an", 0x02),
                 (0x21, "hukou_address", "户口所在地地址", "Household address", "an", 0x50),
                 (0x0E, "hukou_region", "户口所在地行政区划代码", "Household region", "cn",
                  0x03)),
    "DF01EF06": ((0x23, "residence_address", "常住所在地地址", "Residence address", "an",
                  0x50),
                 (0x24, "residence_region", "常住所在地行政区划代码", "Residence region", "cn",
                  0x03),
                 (0x28, "phone", "联系电话", "Telephone", "an", 0x0F),
                 (0x2C, "contact_name", "联系人（监护人）姓名", "Contact (guardian) name", "an",
                  0x32),
                 (0x2D, "contact_phone", "联系人（监护人）电话", "Contact (guardian) phone",
                  "an", 0x0F)),
    "DF01EF07": ((0x29, "employment_status", "个人就业或离退休（职）状态",
                  "Employment or retirement status", "an", 0x01),),
    "DF01EF08": ((0x2B, "marital_status", "婚姻状况", "Marital status", "an", 0x01),),
    "DF01EF09": ((0x2E, "employer_name", "单位名称", "Employer name", "an", 0x46),
                 (0x30, "employer_code", "单位组织机构代码", "Employer organisation code", "an",
                  0x09),
                 (0x32, "person_category", "人员身份类别", "Person category", "an", 0x02)),
    "DF01EF0A": ((0x37, "nationality", "国籍", "Nationality", "an", 0x03),
                 (0x38, "political_status", "政治面貌", "Political status", "an", 0x02),
                 (0x39, "party_join_date", "参加党派日期", "Party membership date", "date",
                  0x04)),
    "DF01EF15": ((0x2A, "education", "学历", "Education level", "cn", 0x01),
                 (0x40, "degree", "学位信息", "Degree", "b", 0x34)),
    "DF02EF05": ((0x42, "title_code", "专业技术职务代码", "Technical title code", "an", 0x03),
                 (0x41, "title_level", "专业技术职务级别", "Technical title level", "an", 0x03),
                 (0x43, "worker_qualification", "职业资格（工人技术等级）信息",
                  "Worker qualification", "b", 0x6C),
                 (0x44, "professional_qualification", "职业资格（专业技术人员）信息",
                  "Professional qualification", "b", 0x65)),
    "DF02EF06": ((0x4C, "employment_reg_date", "最近一次办理就业登记日期",
                  "Latest employment registration", "date", 0x04),
                 (0x4B, "employment_reg_type", "就业登记类型及形式", "Employment registration type",
                  "an", 0x05),
                 (0x4D, "employment_reg_region", "就业登记地行政区划代码",
                  "Employment registration region", "cn", 0x03),
                 (0x60, "unemployment_reg_date", "最近一次办理失业登记日期",
                  "Latest unemployment registration", "date", 0x04),
                 (0x4F, "unemployment_reg_type", "失业登记类型、原因及注销原因",
                  "Unemployment registration type and reasons", "an", 0x06),
                 (0x50, "unemployment_reg_region", "失业登记地行政区划代码",
                  "Unemployment registration region", "cn", 0x03),
                 (0x3A, "occupation", "现从事职业", "Current occupation", "an", 0x07)),
    "DF02EF09": ((0x55, "certificate_no", "就业失业登记证编号", "Certificate number", "an", 0x10),
                 (0x56, "certificate_issuer", "就业失业登记证发证机构", "Certificate issuer", "an",
                  0x46),
                 (0x96, "certificate_date", "就业失业登记证发证/年检日期",
                  "Certificate issue/inspection date", "date", 0x04),
                 (0x97, "certificate_region", "就业失业登记证发证地行政区划代码",
                  "Certificate issuing region", "cn", 0x03)),
    "DF02EF15": ((0x99, "assistance", "就业援助对象认定信息", "Employment assistance", "b",
                  0x10),
                 (0x0F, "assistance_exit_date", "退出就业援助对象范围的认定日期",
                  "Assistance exit date", "date", 0x04),
                 (0x1F, "assistance_exit_region", "退出就业援助对象范围的认定地行政区划代码",
                  "Assistance exit region", "cn", 0x03)),
    "DF03EF05": ((0x61, "ui_region", "失业保险参保地所属行政区划代码",
                  "Unemployment insurance region", "cn", 0x03),
                 (0x60, "unemployment_reg_date", "最近一次办理失业登记日期",
                  "Latest unemployment registration", "date", 0x04),
                 (0x98, "ui_claim_date", "最近一次失业保险金申领日期",
                  "Latest unemployment benefit claim", "date", 0x04),
                 (0x62, "ui_report_date", "失业保险金申领报到日期/信息更新日期",
                  "Benefit report / update date", "date", 0x04),
                 (0x63, "ui_paid_years", "失业保险累计缴费年限", "Contribution years (total)",
                  "an", 0x03),
                 (0x64, "ui_valid_years", "失业保险有效缴费年限", "Contribution years (valid)",
                  "an", 0x03),
                 (0x65, "ui_months_due", "应领取失业保险金月数", "Benefit months due", "an",
                  0x03),
                 (0x66, "ui_months_paid", "已领取失业保险金月数", "Benefit months received",
                  "an", 0x03)),
    "DF03EF06": ((0x45, "assessment_no", "劳动能力鉴定编号", "Assessment number", "an", 0x14),
                 (0x46, "assessment_matter", "申请鉴定事项代码", "Assessment matter", "an", 0x02),
                 (0x47, "disability_grade", "伤残等级", "Disability grade", "an", 0x02),
                 (0x48, "self_care_grade", "生活自理障碍等级", "Self-care impairment grade", "an",
                  0x01),
                 (0x49, "work_ability_conclusion", "丧失劳动能力鉴定结论",
                  "Loss of work ability conclusion", "an", 0x01),
                 (0x67, "assessment_date", "劳动能力鉴定日期", "Assessment date", "date", 0x04),
                 (0x6B, "assessment_body", "劳动能力鉴定机构名称", "Assessment body", "an", 0x3C),
                 (0x4A, "confirmation", "申请确认事项", "Confirmation request", "b", 0x61)),
    "DF03EF07": ((0x70, "pension_type", "养老保险险种类型", "Pension insurance type", "an",
                  0x03),
                 (0x71, "pension_region", "养老保险参保地所属行政区划代码", "Pension region", "cn",
                  0x03),
                 (0x6E, "pension_account_date", "基本养老保险个人账户建立日期",
                  "Pension account opened", "date", 0x04),
                 (0x6C, "retirement_date", "离退休日期", "Retirement date", "date", 0x04),
                 (0x6F, "pension_start_date", "待遇享受开始日期", "Benefits start", "date", 0x04),
                 (0x73, "pension_update_date", "养老保险信息更新日期", "Pension data updated",
                  "date", 0x04)),
    "DF03EF15": ((0x7A, "injury_ins_region", "工伤保险参保地所属行政区划代码",
                  "Work injury insurance region", "cn", 0x03),
                 (0x7B, "injury_benefit_start", "工伤定期待遇享受开始日期",
                  "Periodic injury benefits start", "date", 0x04),
                 (0x7C, "injury_update_date", "工伤保险信息更新日期", "Injury data updated",
                  "date", 0x04)),
    "DF03EF16": ((0x51, "maternity_region", "生育保险参保地所属行政区划代码",
                  "Maternity insurance region", "cn", 0x03),
                 (0x5F, "unemployed_spouse", "职工未就业配偶标识", "Unemployed spouse flag", "an",
                  0x01)),
    "DF03EF17": ((0x3B, "injury_case_no", "工伤认定编号", "Injury determination number", "an",
                  0x14),
                 (0x3C, "injury_employer", "用人单位名称", "Employer", "an", 0x46),
                 (0x3D, "injury_conclusion", "工伤认定结论", "Determination", "an", 0x01),
                 (0x3E, "injury_date", "工伤认定日期", "Determination date", "date", 0x04),
                 (0x3F, "injury_authority", "工伤认定部门名称", "Determining authority", "an",
                  0x3C)),
    "DF03EF18": ((0x74, "dependent_ins_type", "供养险种类型", "Dependant insurance type", "an",
                  0x03),
                 (0x75, "dependent_region", "参保地所属行政区划代码", "Insured region", "cn",
                  0x03),
                 (0x76, "dependent_relation", "供养关系", "Dependency relation", "cn", 0x01),
                 (0x77, "dependent_benefit_start", "供养待遇享受开始日期",
                  "Dependant benefits start", "date", 0x04),
                 (0x78, "dependent_update_date", "供养亲属信息更新日期",
                  "Dependant data updated", "date", 0x04)),
    "DF03EF19": ((0x79, "insurance_certificate", "参保凭证信息", "Insurance certificate", "b",
                  0x27),),
    "DF04EF05": ((0x81, "medical_type", "医疗保险险种类型及标识", "Medical insurance type",
                  "an", 0x08),
                 (0x84, "medical_region", "医疗保险参保地所属行政区划代码",
                  "Medical insurance region", "cn", 0x03),
                 (0x87, "health_record_no", "健康档案编号", "Health record number", "an", 0x11),
                 (0x8C, "medical_category", "医疗保险参保人员类别", "Insured person category",
                  "cn", 0x01),
                 (0x80, "medical_account_date", "基本医疗保险个人账户建立日期",
                  "Medical account opened", "date", 0x04),
                 (0x8B, "medical_account_no", "基本医疗保险个人账号", "Medical account number",
                  "an", 0x1D),
                 (0x8A, "medical_card_no", "医疗证号", "Medical certificate number", "an", 0x0F),
                 (0x83, "hospital_1", "定点医疗机构代码1", "Designated hospital 1", "an", 0x09),
                 (0x86, "hospital_2", "定点医疗机构代码2", "Designated hospital 2", "an", 0x09),
                 (0x89, "hospital_3", "定点医疗机构代码3", "Designated hospital 3", "an", 0x09),
                 (0x7D, "injury_hospital_1", "工伤协议医疗机构代码1", "Work injury hospital 1",
                  "an", 0x09),
                 (0x7E, "injury_hospital_2", "工伤协议医疗机构代码2", "Work injury hospital 2",
                  "an", 0x09),
                 (0x7F, "injury_hospital_3", "工伤协议医疗机构代码3", "Work injury hospital 3",
                  "an", 0x09),
                 (0x8D, "maternity_hospital_1", "生育定点医疗机构代码1", "Maternity hospital 1",
                  "an", 0x09),
                 (0x8E, "maternity_hospital_2", "生育定点医疗机构代码2", "Maternity hospital 2",
                  "an", 0x09),
                 (0x8F, "medical_card_mode", "医疗保险用卡方式", "Card use mode", "an", 0x01)),
    "DF04EF06": ((0x90, "offline_allowed", "准许脱网医保结算标识", "Offline settlement allowed",
                  "an", 0x01),
                 (0x92, "offline_total", "脱网医保结算累计金额", "Offline settlement total",
                  "cn", 0x04),
                 (0x93, "offline_count", "脱网医保结算累计次数", "Offline settlement count",
                  "an", 0x02)),
    "DF05EF05": ((0xA0, "health_status", "健康状况", "Health status", "an", 0x01),
                 (0xA1, "disability_type", "残疾类别", "Disability type", "an", 0x01),
                 (0xB9, "disability_level", "残疾等级", "Disability level", "an", 0x01),
                 (0xA2, "abo_blood_type", "ABO血型代码", "ABO blood type", "an", 0x04),
                 (0xA9, "rh_blood_type", "RH血型代码", "Rh blood type", "cn", 0x01),
                 (0xA3, "contraindicated_drug", "禁忌药信息", "Contraindicated drug", "b", 0x18),
                 (0xA4, "major_disease", "重大疾病信息", "Major disease", "b", 0x17),
                 (0xBA, "allergen", "过敏物质名称", "Allergen", "an", 0x14),
                 (0xBB, "allergic_reaction", "过敏反应", "Allergic reaction", "an", 0x64),
                 (0xAA, "vaccination", "免疫接种名称", "Vaccination", "an", 0x14),
                 (0xAB, "vaccination_date", "免疫接种时间", "Vaccination date", "date", 0x04),
                 (0xAC, "asthma", "哮喘标志", "Asthma", "an", 0x01),
                 (0xAD, "heart_disease", "心脏病标志", "Heart disease", "an", 0x01),
                 (0xAE, "cardiovascular", "心脑血管标志", "Cardio-cerebrovascular", "an", 0x01),
                 (0xAF, "epilepsy", "癫痫病标志", "Epilepsy", "an", 0x01),
                 (0xB0, "coagulation", "凝血紊乱标志", "Coagulation disorder", "an", 0x01),
                 (0xB1, "diabetes", "糖尿病标志", "Diabetes", "an", 0x01),
                 (0xB2, "glaucoma", "青光眼标志", "Glaucoma", "an", 0x01),
                 (0xB3, "dialysis", "透析标志", "Dialysis", "an", 0x01),
                 (0xB4, "organ_transplant", "器官移植标志", "Organ transplant", "an", 0x01),
                 (0xB5, "organ_missing", "器官缺失标志", "Missing organ", "an", 0x01),
                 (0xB6, "prosthesis", "可装卸的义肢标志", "Removable prosthesis", "an", 0x01),
                 (0xB7, "pacemaker", "心脏起搏器标志", "Pacemaker", "an", 0x01),
                 (0xBC, "mental_illness", "精神病标志", "Mental illness", "an", 0x01),
                 (0xB8, "other_warning", "其他医学警示名称", "Other medical warning", "an",
                  0x28)),
    "DF06EF05": ((0xC0, "assistance_agency", "救助金发放机构名称", "Assistance paying agency",
                  "an", 0x46),
                 (0xC2, "assistance_agency_code", "救助金发放机构代码", "Agency code", "an",
                  0x09),
                 (0xC3, "assistance_1", "社会救助信息1", "Social assistance 1", "b", 0x1A),
                 (0xC4, "assistance_2", "社会救助信息2", "Social assistance 2", "b", 0x1A),
                 (0xC5, "assistance_3", "社会救助信息3", "Social assistance 3", "b", 0x1A)),
    "DF06EF06": ((0xC6, "care_agency", "优待抚恤金发放机构", "Special care paying agency", "an",
                  0x46),
                 (0xC8, "care_agency_code", "优待抚恤金发放机构代码", "Agency code", "an", 0x09),
                 (0xC9, "care_1_code", "优待抚恤代码1", "Special care code 1", "cn", 0x01),
                 (0xCA, "care_1_approved", "优待抚恤批准日期1", "Approved 1", "date", 0x04),
                 (0xCB, "care_1_until", "优待抚恤截止日期1", "Valid until 1", "date", 0x04),
                 (0xCC, "care_1_standard", "当年义务兵优待金发放标准",
                  "Conscript allowance standard",
                  "cn", 0x04),
                 (0xCD, "care_1_paid", "优待抚恤已发放年度1", "Paid up to (year) 1", "cn", 0x02),
                 (0xCE, "care_2_code", "优待抚恤代码2", "Special care code 2", "cn", 0x01),
                 (0xCF, "care_2_approved", "优待抚恤批准日期2", "Approved 2", "date", 0x04),
                 (0xD0, "care_2_until", "优待抚恤截止日期2", "Valid until 2", "date", 0x04),
                 (0xD1, "care_2_standard", "当年定期抚恤金发放标准", "Periodic pension standard",
                  "cn", 0x04),
                 (0xD2, "care_2_paid", "优待抚恤已发放月度2", "Paid up to (month) 2", "cn", 0x03),
                 (0xD3, "care_3_code", "优待抚恤代码3", "Special care code 3", "cn", 0x01),
                 (0xD4, "care_3_approved", "优待抚恤批准日期3", "Approved 3", "date", 0x04),
                 (0xD5, "care_3_until", "优待抚恤截止日期3", "Valid until 3", "date", 0x04),
                 (0xD6, "care_3_standard", "当年定期补助发放标准", "Periodic subsidy standard",
                  "cn", 0x04),
                 (0xD7, "care_3_paid", "优待抚恤已发放月度3", "Paid up to (month) 3", "cn", 0x03),
                 (0xD8, "care_4_code", "优待抚恤代码4", "Special care code 4", "cn", 0x01),
                 (0xD9, "care_4_approved", "优待抚恤批准日期4", "Approved 4", "date", 0x04),
                 (0xDA, "care_4_until", "优待抚恤截止日期4", "Valid until 4", "date", 0x04),
                 (0xDB, "pension_central", "当年抚恤金标准（中央）", "Pension standard (central)",
                  "cn", 0x04),
                 (0xDC, "pension_local", "当年抚恤金补助标准（地方）",
                  "Pension supplement (local)", "cn", 0x04),
                 (0xDD, "care_central", "当年保健金标准（中央）", "Health care standard (central)",
                  "cn", 0x04),
                 (0xDE, "care_local", "当年保健金补助标准（地方）",
                  "Health care supplement (local)", "cn", 0x04),
                 (0xDF, "disability_pension_paid", "伤残抚恤金已发放月度",
                  "Disability pension paid up to", "cn", 0x03),
                 (0xE0, "disability_supplement_paid", "伤残抚恤补助金已发放月度",
                  "Disability supplement paid up to", "cn", 0x03),
                 (0xE1, "disability_care_paid", "伤残保健金已发放年度",
                  "Disability care paid up to", "cn", 0x02),
                 (0xE2, "disability_care_supplement_paid", "伤残保健补助金已发放年度",
                  "Disability care supplement paid up to", "cn", 0x02)),
    "DF07EF05": ((0xF0, "honour_code", "荣誉称号名称代码", "Honorary title code", "an", 0x02),
                 (0xF1, "honour_level", "荣誉称号级别", "Honorary title level", "an", 0x01),
                 (0xF2, "honour_date", "荣誉称号批准日期", "Title approved", "date", 0x04),
                 (0xF3, "medal_code", "荣誉奖章名称代码", "Medal code", "an", 0x03),
                 (0xF4, "medal_date", "荣誉奖章批准日期", "Medal approved", "date", 0x04)),
    "DF07EF06": ((0xF5, "expert_category", "专家类别", "Expert category", "an", 0x03),
                 (0xF6, "expert_date", "批准日期", "Approved", "date", 0x04),
                 (0xF7, "expert_approver", "批准单位名称", "Approving body", "an", 0x46)),
    "DF07EF07": ((0xF8, "demob_date", "批准转业日期", "Transfer approved", "date", 0x04),
                 (0xF9, "placement", "安置方式", "Placement", "an", 0x01)),
}

#: Items of B-TLV values, each a TLV inside the record's value (table 9 "见标志…", B4/B5/B7).
_SUB: dict[tuple[str, int], tuple[tuple[int, str, str, str, str, int], ...]] = {
    ("DF01EF15", 0x40): ((0x57, "degree_code", "学位代码", "Degree code", "an", 0x03),
                         (0x58, "major_category", "所学专业类别", "Field of study", "cn", 0x03),
                         (0x59, "school", "毕业学校名称", "School", "an", 0x28)),
    ("DF02EF05", 0x43): ((0x5A, "code", "职业资格（工人技术等级）名称代码", "Qualification code",
                          "an", 0x07),
                         (0x5B, "grade", "职业资格（工人技术等级）等级", "Grade", "an", 0x01),
                         (0x5C, "issuer", "证书发证/年检机构名称", "Issuer", "an", 0x46),
                         (0x5D, "date", "证书发证/年检日期", "Issued", "date", 0x04),
                         (0x5E, "certificate_no", "证书编号", "Certificate number", "an",
                          0x10)),
    ("DF02EF05", 0x44): ((0x33, "code", "职业资格（专业技术人员）名称代码",
                          "Qualification code", "an", 0x03),
                         (0x34, "issuer", "注册登记/年检机构名称", "Registering body", "an",
                          0x46),
                         (0x35, "date", "注册登记/年检日期", "Registered", "date", 0x04),
                         (0x36, "certificate_no", "证书编号", "Certificate number", "an",
                          0x10)),
    ("DF02EF15", 0x99): ((0x10, "type", "认定为就业援助对象类型", "Assistance type", "an",
                          0x03),
                         (0x11, "date", "就业援助认定日期", "Determined", "date", 0x04),
                         (0x12, "region", "就业援助认定地行政区划代码", "Region", "cn", 0x03)),
    ("DF03EF06", 0x4A): ((0x13, "code", "申请确认事项代码", "Matter code", "an", 0x02),
                         (0x14, "conclusion", "确认事项结论", "Conclusion", "an", 0x01),
                         (0x15, "aid_item", "配置辅助器具项目名称", "Assistive device", "an",
                          0x14),
                         (0x16, "date", "申请劳动能力确认日期", "Requested", "date", 0x04),
                         (0x17, "body", "申请劳动能力确认机构名称", "Confirming body", "an",
                          0x3C)),
    ("DF03EF19", 0x79): ((0x18, "type", "险种类型", "Insurance type", "an", 0x03),
                         (0x19, "region", "参保地所属行政区划代码", "Insured region", "cn", 0x03),
                         (0x1A, "start", "本地参保起始日期", "Local insurance start", "date",
                          0x04),
                         (0x1B, "end", "本地参保终止日期", "Local insurance end", "date", 0x04),
                         (0x1C, "amount", "本地个人实际缴费金额", "Amount paid", "cn", 0x04),
                         (0x1D, "months", "本地实际缴费月数", "Months paid", "an", 0x03),
                         (0x1E, "issued", "凭证出具日期", "Certificate issued", "date", 0x04)),
    ("DF05EF05", 0xA3): ((0xA5, "drug", "禁忌药", "Drug", "an", 0x10),
                         (0xA6, "drug_code", "禁忌药代码", "Drug code", "an", 0x04)),
    ("DF05EF05", 0xA4): ((0xA7, "disease", "重大疾病", "Disease", "an", 0x10),
                         (0xA8, "disease_code", "重大疾病代码", "Disease code", "an", 0x03)),
    **{("DF06EF05", t): ((0xE3, "code", "社会救助代码", "Assistance code", "cn", 0x01),
                         (0xE4, "approved", "社会救助批准日期", "Approved", "date", 0x04),
                         (0xE5, "reviewed", "社会救助复核日期", "Reviewed", "date", 0x04),
                         (0xE6, "amount", "最近一次获得社会救助的金额", "Latest amount", "cn",
                          0x04),
                         (0xE7, "paid", "社会救助已发放月度", "Paid up to", "cn", 0x03))
       for t in (0xC3, 0xC4, 0xC5)},
}

#: Items of the cyclic files' records, by position (table 9; no tags).
_FIELDS: dict[str, tuple[tuple[str, str, str, str, int], ...]] = {
    "DF02EF07": (("occupation", "从事职业", "Occupation", "an", 0x07),
                 ("start", "就业起始日期", "Start", "date", 0x04),
                 ("end", "就业终止日期", "End", "date", 0x04),
                 ("employer", "就业工作单位名称", "Employer", "an", 0x46)),
    "DF02EF16": (("type", "享受就业扶持政策类型", "Support type", "an", 0x03),
                 ("approved", "享受就业扶持政策核准日期", "Approved", "date", 0x04),
                 ("start", "就业扶持政策享受开始日期", "Start", "date", 0x04),
                 ("end", "就业扶持政策享受终止日期", "End", "date", 0x04),
                 ("region", "就业扶持政策享受地行政区划代码", "Region", "cn", 0x03)),
    "DF04EF08": (("seq", "交易序号", "Transaction number", "b", 0x02),
                 ("type", "交易类型", "Transaction type", "an", 0x01),
                 ("terminal", "终端机编号", "Terminal number", "cn", 0x06),
                 ("time", "交易时间", "Time", "cn", 0x07),
                 ("account_amount", "个人账户交易金额", "Personal account amount", "b", 0x04),
                 ("self_paid", "个人自付金额", "Paid by the person", "b", 0x04),
                 ("pool_paid", "统筹基金支付金额", "Paid by the pooled fund", "b", 0x04)),
    "DF04EF15": (("seq", "交易序号", "Transaction number", "b", 0x02),
                 ("kind", "结算类别", "Settlement kind", "an", 0x01)),
}

ITEMS = MappingProxyType({f: tuple(_e(f, *row) for row in rows) for f, rows in _ITEMS.items()})
SUBITEMS = MappingProxyType({k: tuple(_e(k[0], *row) for row in rows)
                             for k, rows in _SUB.items()})
RECORD_FIELDS = MappingProxyType({f: tuple(_e(f, 0, *row) for row in rows)
                                  for f, rows in _FIELDS.items()})


def split_file_name(name: str) -> tuple[DfSpec, EfSpec]:
    """``DF01EF0A`` (the national pFileAddr file name) → its DF and EF specs."""
    text = name.strip().upper()
    df = DF_BY_NAME.get(text[:4])
    if df is None or len(text) != 8:
        raise BadInputError(f"{name!r} is not a DF file name such as DF01EF0A "
                            f"(DFs: {', '.join(DF_BY_NAME)})")
    try:
        return df, df.ef(text[4:])
    except KeyError:
        raise BadInputError(f"{df.name} has no file {text[4:]} "
                            f"(files: {', '.join(e.name for e in df.efs())})") from None


def item(file: str, tag: int) -> DataElement:
    """The data item ``tag`` of ``DF01EF15``-style file (BadInputError if the file has none)."""
    for el in ITEMS.get(file, ()):
        if el.tag == tag:
            return el
    raise BadInputError(f"{file} has no data item with tag {tag:02X}")


def occurrences(ef: EfSpec, tag: int) -> int:
    """How many records with identifier ``tag`` the personalised file holds."""
    return ef.tags.count(tag)


def record_number(ef: EfSpec, tag: int, n: int) -> int:
    """Record number (1-based) of the ``n``-th record with identifier ``tag`` in creation order.

    ASSUMPTION (the notice orders items, it does not number records): a personalised file's
    records are created in table 9's order, as the SSSE files' are [S13]."""
    seen = 0
    for i, t in enumerate(ef.tags, start=1):
        if t == tag:
            seen += 1
            if seen == n:
                return i
    raise BadInputError(f"{ef.name} has {seen} record(s) with identifier {tag:02X}, not {n}")


def file_names() -> tuple[str, ...]:
    """Every DF file by its national name, in table order."""
    return tuple(df.name + ef.name for df in DFS for ef in df.efs())
