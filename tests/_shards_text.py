"""Original Traditional Chinese (Taiwan) sentences for the shards tests, written for this project."""

from __future__ import annotations

import random

SENTENCES = [
    "早上的捷運車廂裡，大家低頭滑著手機。",
    "阿嬤在菜市場買了一把新鮮的地瓜葉。",
    "這間巷口的早餐店賣的蘿蔔糕特別香。",
    "颱風過後，河堤旁的腳踏車道積滿了落葉！",
    "工程師把程式碼上傳到伺服器之後，就去便利商店買咖啡。",
    "你知道明天的火車時刻表有沒有改嗎？",
    "圖書館的自習室在考試前總是坐滿了學生；",
    "我們沿著海岸線騎機車，看見遠方的漁船慢慢靠岸。",
    "研究團隊發現，溫度上升會影響稻米的收成……",
    "老師提醒同學，報告要在星期五以前繳交。",
    "夜市的攤販一邊烤香腸，一邊和客人聊天。",
    "這款軟體可以把照片自動整理成相簿。",
    "山上的茶園霧氣很重，空氣聞起來很清新。",
    "她用隨身碟把簡報檔案帶到會議室。",
    "「今天的湯有點鹹。」爸爸笑著說。",
    "臺北市的公車站牌大多已經換成電子看板了。",
]


def paragraph(rng: random.Random, sentences: int) -> str:
    return "".join(rng.choice(SENTENCES) for _ in range(sentences))


def documents(n: int, seed: int = 0) -> list[str]:
    """n documents of a few paragraphs each, deterministic for a seed."""
    rng = random.Random(seed)
    return ["\n".join(paragraph(rng, rng.randint(1, 6)) for _ in range(rng.randint(1, 4))) for _ in range(n)]
