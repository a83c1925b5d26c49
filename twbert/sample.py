"""The embedded sample: a small zhwiki dump and a FineWeb2 parquet file, written in the real formats.

All text here was written for twbert. It is small but has every case the build must handle: wikitext
with infoboxes, navboxes, references, tables, files, categories, interlanguage links, conversion
markup and NoteTA rules; redirects and disambiguation pages; Taiwan, Mainland-in-Traditional,
Hong Kong and Simplified web pages; low-quality pages, link lists, PII, and planted near-duplicates
(a web copy of a wiki article, a Simplified copy of a Traditional page, lightly edited copies).
Everything is drawn from a seeded generator, so the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

from twbert.dumps import write_fineweb_parquet, write_wiki_dump

# --- sentence pools -------------------------------------------------------------------------------
# Taiwan usage, Traditional script.
TW = [
    "臺北捷運的班距在尖峰時段縮短到三分鐘以內，通勤族多半刷悠遊卡進站。",
    "颱風來襲前，縣市政府會宣布是否停班停課，大家習慣守在電視前等消息。",
    "夜市裡的蚵仔煎、鹽酥雞和珍珠奶茶，是許多觀光客來臺灣一定要嘗試的小吃。",
    "全民健保讓民眾看病只需要負擔部分負擔，基層診所的掛號費也不算高。",
    "高鐵從南港到左營最快大約一個半小時，讓西部走廊的城市像是生活圈。",
    "便利商店幾乎每個路口都有一家，可以繳費、領包裹，也能買到熱騰騰的便當。",
    "許多上班族騎機車通勤，早上在十字路口的機車待轉區常常停滿了人。",
    "這款軟體支援雲端同步，使用者可以在手機和筆電之間無縫切換。",
    "研究團隊把資料上傳到伺服器之前，會先用程式檢查每個欄位的品質。",
    "學校的資訊課開始教學生寫程式，從簡單的迴圈和條件判斷入門。",
    "網路上的影片平臺吸引了大量創作者，有人靠著分享料理過日子。",
    "立法院三讀通過修正草案，新制度預計明年元旦起正式上路。",
    "中央氣象署提醒，鋒面通過後氣溫明顯下降，北部山區可能出現低溫特報。",
    "垃圾車播放著熟悉的音樂，居民拎著分類好的垃圾在巷口等候。",
    "阿里山的日出和雲海吸引許多遊客在清晨搭乘小火車上山。",
    "國小老師帶著學生到社區圖書館借書，培養閱讀的習慣。",
    "這家新創公司專注於半導體封裝測試，工程師多半來自新竹科學園區。",
    "週末的花市人潮擁擠，攤商忙著介紹多肉植物和蘭花的照顧方式。",
    "騎腳踏車環島是許多年輕人的夢想，沿途的民宿也提供打氣和維修服務。",
    "媽媽在傳統市場挑選當季的高麗菜，老闆還多送了一把蔥。",
    "公車站牌上的即時動態系統，讓乘客知道下一班車還要等幾分鐘。",
    "這部紀錄片描寫漁村的日常，導演花了三年時間跟拍當地的家庭。",
    "大學生利用暑假到偏鄉擔任課輔志工，陪孩子們寫作業和打球。",
    "政府推動長照服務，讓需要照顧的長輩可以在社區裡得到協助。",
    "她用筆記型電腦整理簡報，準備明天向客戶說明專案的進度。",
    "這間咖啡廳的老闆自己烘豆，每天下午都會推出限量的手沖咖啡。",
    "地震發生後，手機的國家級警報立刻響起，提醒民眾就地避難。",
    "廟口的布袋戲演出吸引了不少民眾圍觀，小朋友看得目不轉睛。",
    "許多家庭在清明節返鄉掃墓，高速公路上因此出現車潮。",
    "港口的貨櫃輪進出頻繁，物流業者正在導入自動化的倉儲系統。",
    "圖書館推出電子書借閱服務，讀者只要用借書證登入就能下載。",
    "這位作家的新書描寫眷村的童年回憶，出版後受到不少讀者喜愛。",
    "颱風過後，農民忙著搶修被吹倒的香蕉樹，菜價也跟著上漲。",
    "公園裡的長輩清晨做體操，年輕人則在步道上慢跑。",
    "市政府在河濱公園增設自行車道，假日吸引許多家庭前往騎乘。",
    "這場音樂會的門票在網路上開賣不到十分鐘就全數售完。",
    "高中生參加科展，研究主題是校園周邊的空氣品質。",
    "醫院導入電子病歷系統，醫師可以在診間快速查詢病人的檢驗報告。",
    "冬天的溫泉旅館生意特別好，北投和礁溪都是熱門的選擇。",
    "選舉期間，候選人的宣傳車穿梭在大街小巷，拜託大家投下神聖的一票。",
]

# Mainland usage written in Traditional script: a character-ratio test alone would pass these.
CN_TRAD = [
    "這款軟件的用戶界面經過優化，視頻播放更加流暢。",
    "公司的網絡安全團隊及時發現了服務器上的漏洞。",
    "我們需要對這些信息進行質量把控，確保數據的準確性。",
    "他用U盤拷貝了文件，然後在筆記本上打開了演示文稿。",
    "這個項目的負責人表示，將加大對人工智能的投入力度。",
    "視頻網站的會員服務越來越受歡迎，很多年輕人都充值了。",
    "地鐵站裡的出租車排隊等候乘客，高峰期尤其明顯。",
    "這家企業在互聯網行業深耕多年，打造了自己的生態。",
    "打印機的墨盒用完了，請在辦公室的群裡說一聲。",
    "學校組織同學們參加社會實踐活動，提升綜合素質。",
]

# Mainland usage, Simplified script.
CN_SIMP = [
    "这款软件的用户界面经过优化，视频播放更加流畅。",
    "城市轨道交通的建设速度很快，地铁线路覆盖了大部分城区。",
    "我们需要对这些信息进行质量把控，确保数据的准确性。",
    "网络购物已经成为人们日常生活的一部分，快递当天就能送达。",
    "政府出台了新的政策，鼓励企业加大研发投入。",
    "这部电视剧在视频平台上线后，播放量迅速突破了一亿。",
    "学校组织同学们参加社会实践活动，提升综合素质。",
    "高铁的开通让两座城市之间的通勤时间缩短到一个小时。",
    "他在服务器上部署了新的程序，并且优化了数据库的查询。",
    "春节期间，许多人选择回老家和家人团聚。",
]

# Hong Kong usage and Cantonese, Traditional script.
HK = [
    "我哋今晚喺旺角食飯，你得唔得閒一齊嚟？",
    "佢話聽日唔使返工，所以打算去海灘行吓。",
    "呢間茶餐廳嘅菠蘿油好出名，朝早成日排長龍。",
    "搭港鐵去機場好方便，記得用八達通入閘。",
    "啲學生喺圖書館溫書，準備下個月嘅文憑試。",
    "天文台發出三號強風信號，大家出入要小心。",
    "佢哋喺屋企睇緊波，冇人聽到電話響。",
    "呢個週末嘅天氣幾好，好多人去行山。",
]

LOW_QUALITY_LINES = ["點我看更多", "加入購物車", "首頁 | 關於我們 | 聯絡我們", "熱門商品", "立即購買"]

REFERENCE_TAIL = [
    "參考資料",
    "1. 交通部統計處，年度報告，第12頁。",
    "2. 作者不詳，〈城市通勤調查〉，網路文章。",
    "相關連結：https://example.gov.tw/report https://example.org.tw/data",
]

# --- wiki pages -----------------------------------------------------------------------------------

ARTICLES = [
    {
        "title": "臺北捷運",
        "text": """{{NoteTA
|G1=IT
|1=zh-hans:地铁; zh-tw:捷運;
|2=zh-hans:悠游卡; zh-tw:悠遊卡;
}}
{{Infobox rail system
| name = 臺北捷運
| image = Taipei Metro Logo.svg
| opened = 1996年
}}
'''臺北捷運'''（{{lang-en|Taipei Metro}}）是服务[[臺北市]]与[[新北市]]的[[城市轨道交通|大眾運輸系統]]，由-{zh-hans:台北大众捷运股份有限公司;zh-tw:臺北大眾捷運股份有限公司}-營運。<ref name="trtc">{{cite web |url=https://www.metro.taipei/ |title=公司簡介 |accessdate=2024-01-01}}</ref>

[[File:Taipei Metro train.jpg|thumb|right|一列停靠在月台的列車]]
乘客可以使用悠游卡搭乘，尖峰時段班距約三分鐘。系统采用{{link-en|自動列車控制|Automatic train control}}技术。<ref>一份不存在的年報，2023年。</ref>

== 路線 ==
{| class="wikitable"
! 路線 !! 顏色
|-
| 文湖線 || 棕色
|-
| 淡水信義線 || 紅色
|}
目前共有多條路線，-{R|文湖線}-是中運量系統。

=== 轉乘 ===
各線之間可在[[臺北車站]]等車站轉乘，轉乘不需出站。

== 参见 ==
* [[桃園捷運]]
* [[高雄捷運]]

== 參考資料 ==
{{reflist}}

=== 延伸閱讀 ===
* 一本關於捷運的書。

{{臺北捷運}}
[[Category:臺北市交通]]
[[en:Taipei Metro]]
[[ja:台北メトロ]]
""",
    },
    {
        "title": "夜市",
        "text": """-{H|zh-hans:软件;zh-tw:軟體;}-
'''夜市'''是在夜间营业的市集，在[[臺灣]]十分普遍。<ref>{{cite book|title=臺灣小吃誌|year=2010}}</ref>常见小吃包括蚵仔煎和[[珍珠奶茶]]。

近年有业者开发手机软件，让游客查询摊位位置。{{le|士林夜市|Shilin Night Market}}是最著名的夜市之一，另有{{tsl|en|Raohe Street Night Market|饒河街觀光夜市}}。

== 歷史 ==
早期的夜市多半聚集在[[廟宇|廟口]]，随着都市发展逐渐形成固定的商圈。

== 注释 ==
<references group="注"/>

== 外部链接 ==
* [https://example.com 官方網站]

[[Category:臺灣文化]]
[[Category:市集]]
""",
    },
    {
        "title": "颱風",
        "text": """{{about|熱帶氣旋|其他用法|颱風 (消歧義)}}
'''颱風'''是發生在[[西北太平洋]]的[[熱帶氣旋]]。<ref>{{cite web|title=颱風百問|publisher=中央氣象署}}</ref>臺灣每年夏秋兩季常受颱風影響，-{于}-爾班一帶的船隻也會提前回港。

當颱風接近時，政府會發布[[海上颱風警報]]與陸上警報，並由各縣市宣布是否停班停課。{{lang|en|typhoon}}一詞的來源眾說紛紜。

== 分類 ==
依中心附近最大風速，颱風分為輕度、中度與強烈三級。

== 相關條目 ==
* [[颶風]]

== 腳註 ==
{{reflist|group=note}}

{{Navbox
| name = 氣象
| list1 = [[颱風]] · [[梅雨]]
}}
[[Category:氣象]]
[[en:Typhoon]]
""",
    },
    {
        "title": "全民健康保險",
        "text": """{{NoteTA|1=zh-hans:信息; zh-tw:資訊;|2=zh-hans:网络; zh-tw:網路;}}
'''全民健康保險'''简称'''健保'''，是[[臺灣]]的社會保險制度，於1995年開辦。<ref name="nhi"/>

民眾就醫時出示健保卡，医院可以通过网络查询病人的就医信息。-{zh-hans:计算机;zh-hk:電腦;zh-tw:電腦}-系統讓申報流程更加快速。

== 財務 ==
保費由被保險人、雇主與政府共同負擔。

== 參考文獻 ==
<references>
<ref name="nhi">衛生福利部中央健康保險署。</ref>
</references>

[[Category:臺灣社會福利]]
""",
    },
    {
        "title": "高速鐵路",
        "text": """'''高速鐵路'''，简称'''高铁'''，是指营运速度达到每小时250公里以上的铁路系统。[[臺灣高速鐵路]]於2007年通車，-{zh-hans:连接;zh-hant:連結}-臺北與高雄。

{{Main|臺灣高速鐵路}}
旅客可以在网络上订票，也可以使用手机软件取票。

== 技術 ==
列车采用[[新幹線]]技术，最高速度每小时300公里。{{Citation needed|date=2024年1月}}

== 资料来源 ==
{{reflist}}

== 书目 ==
* 某作者，《鐵道百年》。

[[Category:鐵路運輸]]
[[ko:고속철도]]
""",
    },
]

REDIRECTS = [("台北捷运", "臺北捷運"), ("健保", "全民健康保險"), ("台风", "颱風")]

DISAMBIG = {
    "title": "颱風 (消歧義)",
    "text": "'''颱風'''可以指：\n* [[颱風]]，一種熱帶氣旋。\n* [[颱風 (電影)]]，一部電影。\n\n{{disambig}}\n",
}

NON_ARTICLE = [
    {"title": "Template:臺北捷運", "ns": 10, "text": "{{Navbox|name=臺北捷運|list1=[[文湖線]]}}"},
    {"title": "Category:臺灣文化", "ns": 14, "text": "關於臺灣文化的分類。"},
]


def _paragraphs(rng: random.Random, pool: list[str], n_par: int, per_par: tuple[int, int]) -> list[str]:
    """Paragraphs of sentences drawn without replacement: no sentence repeats within a document."""
    sizes = [rng.randint(*per_par) for _ in range(n_par)]
    drawn, clauses = [], set()
    for sentence in rng.sample(pool, min(len(pool), 4 * sum(sizes))):
        parts = set(sentence.rstrip("。！？").split("，"))
        if not parts & clauses:  # a clause twice in one document reads as spam to the quality filter
            drawn.append(sentence)
            clauses |= parts
        if len(drawn) == sum(sizes):
            break
    while sum(sizes) > len(drawn):
        sizes.pop()
    out, i = [], 0
    for n in sizes:
        out.append("".join(drawn[i : i + n]))
        i += n
    return out


def recombined(pool: list[str]) -> list[str]:
    """Every first clause with every other sentence's rest: 40 sentences give 1,560. Documents drawn
    from the bare pool would share so many sentences that the dedup stage rightly removes them."""
    heads, tails = [], []
    for sentence in pool:
        head, sep, tail = sentence.partition("，")
        if sep:
            heads.append(head)
            tails.append(tail)
    return [f"{h}，{t}" for i, h in enumerate(heads) for j, t in enumerate(tails) if i != j]


def mainland_pools() -> tuple[list[str], list[str]]:
    """Mainland usage in Simplified and in Traditional script: the hand-written sentences, plus the
    Taiwan ones rewritten with Mainland vocabulary (OpenCC tw2sp: 軟體→软件, 資訊→信息 ...)."""
    import opencc

    tw2sp, s2t = opencc.OpenCC("tw2sp"), opencc.OpenCC("s2t")
    simp = CN_SIMP + [tw2sp.convert(t) for t in recombined(TW)]
    return simp, CN_TRAD + [s2t.convert(t) for t in simp[len(CN_SIMP):]]


def generated_article(rng: random.Random, title: str, pool: list[str]) -> str:
    """A plain article in zhwiki's shape: lead, sections, a reference section and categories."""
    pars = _paragraphs(rng, pool, 4, (1, 3))
    return (
        f"'''{title}'''是一個條目。{pars[0]}<ref>{{{{cite web|title={title}|url=https://example.org/{rng.randint(1, 999)}}}}}</ref>\n\n"
        f"== 概要 ==\n{pars[1]}[[{title}相關|相關主題]]。\n\n"
        f"== 發展 ==\n{pars[2]}\n\n=== 近況 ===\n{pars[3]}\n\n"
        "== 參考資料 ==\n{{reflist}}\n\n"
        f"[[Category:{title}]]\n"
    )


def wiki_pages(rng: random.Random, n_generated: int) -> list[dict]:
    pages, next_id = [], 100
    for a in ARTICLES:
        pages.append({"title": a["title"], "id": next_id, "text": a["text"]})
        next_id += 1
    cn_simp, _ = mainland_pools()
    tw = recombined(TW)
    for i in range(n_generated):
        pool = tw if i % 4 else cn_simp  # zhwiki source text is often Simplified
        pages.append({"title": f"樣本條目{i:03d}", "id": next_id, "text": generated_article(rng, f"樣本條目{i:03d}", pool)})
        next_id += 1
    for src, dst in REDIRECTS:
        pages.append({"title": src, "id": next_id, "redirect": dst, "text": f"#REDIRECT [[{dst}]]"})
        next_id += 1
    pages.append({"title": DISAMBIG["title"], "id": next_id, "text": DISAMBIG["text"]})
    next_id += 1
    for p in NON_ARTICLE:
        pages.append({**p, "id": next_id})
        next_id += 1
    rng.shuffle(pages)
    for page_id, p in enumerate(pages, start=100):  # real dumps list pages in page-id order
        p["id"] = page_id
    return pages


# --- web rows -------------------------------------------------------------------------------------

def _edit(rng: random.Random, text: str, rate: float) -> str:
    """Replace about `rate` of the characters: a lightly edited copy."""
    chars = list(text)
    for i in rng.sample(range(len(chars)), int(len(chars) * rate)):
        chars[i] = rng.choice("的一是不了人我在有他這中大來上個國到說們為子和你地出道也時年")
    return "".join(chars)


def web_rows(rng: random.Random, n_tw: int, pages: list[dict]) -> list[dict]:
    rows: list[dict] = []
    tw = recombined(TW)

    def add(text: str, url: str, **kw) -> None:
        rows.append({"text": text, "url": url, "id": f"<urn:uuid:{rng.getrandbits(128):032x}>", **kw})

    for i in range(n_tw):
        body = "\n".join(_paragraphs(rng, tw, rng.randint(2, 4), (2, 4)))
        tld = rng.choice([".com.tw", ".tw", ".gov.tw", ".edu.tw", ".org.tw", ".com"])
        if i % 10 == 3:
            body += f"\n如有問題請來信 service{i}@example.com.tw 或撥打 0912-345-{i % 1000:03d}，客服專線 (02) 2345-{6000 + i}。"
        if i % 10 == 5:
            body += "\n" + "\n".join(REFERENCE_TAIL)
        add(body, f"https://www{i}.example{tld}/post/{i}")
    cn_simp, cn_trad = mainland_pools()
    for i in range(n_tw // 4):
        add("\n".join(_paragraphs(rng, cn_trad, rng.randint(2, 3), (2, 3))), f"https://news{i}.example.cn/a/{i}.html")
        add("\n".join(_paragraphs(rng, cn_simp, rng.randint(2, 3), (2, 3))), f"https://www{i}.example.com.cn/p/{i}")
    for i in range(n_tw // 16):  # few: the hand-written Hong Kong pool is small
        add("\n".join(_paragraphs(rng, HK, 2, (2, 3))), f"https://forum{i}.example.com.hk/t/{i}")
    # Low quality: a page of navigation lines, and one line repeated.
    for i in range(4):
        add("\n".join(rng.choices(LOW_QUALITY_LINES, k=30)), f"https://shop{i}.example.com/list")
        add("\n".join([TW[i]] * 12), f"https://spam{i}.example.com/")
    # Near-duplicates: lightly edited copies of earlier web pages, a Simplified copy of a Taiwan page,
    # and web copies of wiki articles.
    for i in range(0, n_tw, 8):
        add(_edit(rng, rows[i]["text"], 0.06), rows[i]["url"].replace("www", "mirror"))
    import opencc

    t2s = opencc.OpenCC("t2s")
    for i in range(1, n_tw, 16):
        add(t2s.convert(rows[i]["text"]), f"https://copy{i}.example.cn/{i}")
    generated = [p for p in pages if p["title"].startswith("樣本條目")][:6]
    for p in generated:
        body = p["text"].split("== 參考資料 ==")[0]
        plain = "".join(ch for ch in body if ch not in "'[]=<>{}|")
        add(plain, f"https://blog.example.com.tw/copy/{p['id']}")
    rng.shuffle(rows)
    return rows


def write(out: str | Path, seed: int = 0, n_generated_pages: int = 200, n_web: int = 160) -> dict[str, Path]:
    """Write the sample under `out`; returns the paths of the dump, its index and the parquet file."""
    out = Path(out)
    rng = random.Random(seed)
    pages = wiki_pages(rng, n_generated_pages)
    dump, index = write_wiki_dump(out / "zhwiki-20261101-pages-articles-multistream.xml.bz2", pages)
    parquet = write_fineweb_parquet(out / "fineweb2-cmn_Hani-000_00000.parquet", web_rows(rng, n_web, pages))
    return {"wiki": dump, "wiki_index": index, "fineweb": parquet}
