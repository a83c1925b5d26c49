"""Generated Chinese documents and planted near-duplicates, shared by the dedup tests and benchmark.

The word pool below was written for this project (Traditional Chinese, Taiwan usage). Documents are
random sentences over it, so two distinct documents share almost no character 5-grams, while the
planted copies below are what real corpora contain: light edits, reordered paragraphs, a Simplified
(mainland-vocabulary) copy of a Traditional text, and a Wikipedia article republished on the web.
"""

from __future__ import annotations

import random

WORDS = (
    "臺灣 資料 網路 軟體 硬體 學校 老師 學生 電腦 程式 開發 計畫 經濟 政府 體育 運動 圖書館 "
    "捷運 鐵路 機場 颱風 地震 農業 稻米 茶葉 夜市 廟宇 節慶 傳統 文化 歷史 博物館 藝術 音樂 "
    "電影 演員 導演 觀眾 報導 記者 雜誌 書籍 作者 讀者 語言 詞彙 發音 漢字 簡體 繁體 "
    "研究 實驗 數據 統計 分析 模型 訓練 結果 問題 方法 系統 網站 使用者 帳號 密碼 安全 "
    "醫院 醫師 護理 健康 飲食 睡眠 環境 汙染 能源 電力 風力 太陽能 海洋 山脈 河流 湖泊 "
    "森林 動物 植物 鳥類 魚類 昆蟲 氣候 溫度 雨量 季節 春天 夏天 秋天 冬天 早晨 夜晚 "
    "城市 鄉村 街道 市場 商店 餐廳 咖啡 麵包 牛肉麵 珍珠奶茶 高鐵 公車 機車 腳踏車 "
    "發展 改變 討論 參與 建立 完成 提供 支援 管理 維護 設計 製作 測量 觀察 記錄 說明 "
    "重要 複雜 簡單 著名 古老 現代 快速 緩慢 豐富 稀少 美麗 安靜 熱鬧 寬廣 狹窄 "
    "議會 選舉 法律 憲法 法院 總統 縣長 市長 鄉鎮 區域 邊界 島嶼 港口 燈塔 橋梁"
).split()
PUNCT = "，，，、；"


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
    out = words[0]
    for w in words[1:]:
        out += (rng.choice(PUNCT) if rng.random() < 0.15 else "") + w
    return out + rng.choice("。。。！？")


def document(rng: random.Random, paragraphs: int = 4, sentences: tuple[int, int] = (3, 6)) -> str:
    return "\n".join(
        "".join(sentence(rng) for _ in range(rng.randint(*sentences))) for _ in range(paragraphs)
    )


_HAN = "".join(sorted(set("".join(WORDS))))


def char_edits(text: str, rate: float, rng: random.Random) -> str:
    """Substitute, insert or delete `rate` of the characters (not the newlines)."""
    chars = list(text)
    positions = [i for i, c in enumerate(chars) if c != "\n"]
    for i in sorted(rng.sample(positions, max(1, int(len(positions) * rate))), reverse=True):
        op = rng.random()
        if op < 0.6:
            chars[i] = rng.choice(_HAN)
        elif op < 0.8:
            chars.insert(i, rng.choice(_HAN))
        else:
            del chars[i]
    return "".join(chars)


def reorder_paragraphs(text: str, rng: random.Random) -> str:
    """The same paragraphs in another order (a text of one paragraph is cut at its sentences)."""
    paras = text.split("\n")
    if len(paras) < 3:
        sents = [s + "。" for s in text.replace("\n", "").split("。") if s]
        k = max(1, len(sents) // 4)
        paras = ["".join(sents[i : i + k]) for i in range(0, len(sents), k)]
    if len(paras) < 2:
        return text
    order = list(range(len(paras)))
    while order == sorted(order):
        rng.shuffle(order)
    return "\n".join(paras[i] for i in order)


def simplified_copy(text: str) -> str:
    """The text as a mainland site would carry it: Simplified script and mainland vocabulary."""
    import opencc

    return opencc.OpenCC("tw2sp").convert(text)


def web_copy(text: str, rng: random.Random) -> str:
    """A Wikipedia article republished on a web page: navigation, share buttons and a footer around
    it, half-width punctuation."""
    header = rng.choice(["首頁 > 知識百科 > 條目", "網站導覽｜最新消息｜熱門文章", "分類：百科 標籤：知識"])
    footer = rng.choice(["分享到 Facebook 分享到 LINE", "本文轉載自網路百科，版權歸原作者所有。", "上一篇 下一篇 回到頂端"])
    body = text.replace("，", ", ").replace("。", ". ")
    return f"{header}\n{body}\n{footer}"
