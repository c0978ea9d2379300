"""Realistic Chinese company names for benchmarks: 城市 + 字号 + 行业 + 组织形式, as a customer list
exported from Excel would hold them (深圳市恒瑞网络科技有限公司).

Names are made distinct the way real ones are, so the fuzzy matcher must do real work and still
call them different: every 字号 (brand) is used once, its characters all have different sounds (no
accidental 腾迅 ~ 腾讯), and two names in the same city and trade share no brand character (深圳华信
网络科技 vs 深圳华达网络科技 is close enough that the bot would ask). `homophone` makes the kind of
near-duplicate people really type: the brand's first character swapped for one that sounds the same.
"""

from __future__ import annotations

import random

CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "南京", "苏州", "武汉", "西安", "重庆", "天津", "长沙",
          "郑州", "青岛", "厦门", "宁波", "合肥", "福州", "济南", "东莞", "佛山", "无锡", "昆明", "沈阳", "大连",
          "南昌", "贵阳", "南宁", "太原", "石家庄", "哈尔滨", "长春", "兰州", "温州", "泉州", "珠海", "中山",
          "常州", "徐州")
TRADES = ("科技", "网络科技", "信息技术", "电子科技", "软件", "贸易", "商贸", "实业", "物流", "供应链管理",
          "建筑工程", "装饰工程", "医疗器械", "生物科技", "医药", "教育咨询", "文化传媒", "广告", "餐饮管理",
          "食品", "环保科技", "新材料", "机械设备", "五金制品", "服饰")
FORMS = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")
# One character per sound (toneless pinyin), none of them a trade or place word.
BRAND_CHARS = ("华信达恒通泰盛源宏博瑞祥德嘉诚创天金安联和康美海永明丰汇隆兴宇飞腾凯旭晨光航云启聚鼎越智力思维"
               "品优邦顺捷迅驰奥朗普昊尚卓凡阳春秋林森川江湖山石宝福寿喜乐万方贞仁义坤乾艮兑蓝青紫彩雪霜露雷佰贝"
               "本彬灿策昌超崇楚翠道帝栋斗敦朵芬冈高歌耕弓古冠桂涵环皇火基坚京钧可亮灵柳伦罗麦曼茂蒙米苗敏默木"
               "纳楠宁诺欧攀沛鹏平强巧琴琼曲泉然荣润若赛莎舍申水硕松苏算坦棠陶特铁廷图拓旺文沃夏仙肖雄秀轩雅岩"
               "耀野银英泽展章昭哲峥舟宗")
# Same sound, other character, as a rep or a clerk mistypes a brand.
HOMOPHONES = {"华": "桦", "信": "欣", "达": "答", "恒": "衡", "通": "彤", "泰": "太", "盛": "胜", "源": "元",
              "宏": "弘", "瑞": "睿", "祥": "翔", "德": "得", "嘉": "佳", "诚": "成", "天": "添", "金": "今",
              "安": "鞍", "康": "慷", "美": "镁", "海": "亥", "永": "咏", "明": "铭", "丰": "峰", "汇": "惠",
              "隆": "龙", "兴": "星", "宇": "雨", "飞": "菲", "凯": "铠", "旭": "煦", "晨": "辰", "光": "广"}


def company_names(count: int, seed: int = 13) -> list[str]:
    """`count` distinct legal names (up to about 20,000), the same for the same seed."""
    rng = random.Random(seed)
    used: set[str] = set()
    names: list[str] = []
    groups = [(city, trade) for city in CITIES for trade in TRADES]
    rng.shuffle(groups)
    per_group = -(-count // len(groups))
    for city, trade in groups:
        chars = list(BRAND_CHARS)
        rng.shuffle(chars)
        pairs = (a + b for a, b in zip(chars[::2], chars[1::2]) if a + b not in used)
        for brand, _ in zip(pairs, range(per_group)):
            used.add(brand)
            names.append(f"{city}{'市' if rng.random() < 0.4 else ''}{brand}{trade}{rng.choice(FORMS)}")
    rng.shuffle(names)
    return names[:count]


def homophone(name: str) -> str | None:
    """A name from `company_names` with its brand's first character swapped for a same-sounding
    one, or None when that character has no listed homophone."""
    city = next(c for c in CITIES if name.startswith(c))
    brand_at = len(city) + (name[len(city)] == "市")
    swapped = HOMOPHONES.get(name[brand_at])
    return name[:brand_at] + swapped + name[brand_at + 1:] if swapped else None
