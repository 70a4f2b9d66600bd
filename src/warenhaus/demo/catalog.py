"""A German department store's assortment, generated: the category tree and a few hundred
products with variants, prices and stock.

Generation is deterministic (a seeded random generator, fixed lists), so running the demo twice
yields the same slugs and SKUs and the loader can skip what exists. Brands are invented; they
sound like what a German shop sells without claiming anything about real products.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

SEED = 20261123


@dataclass(frozen=True)
class CategorySpec:
    slug: str
    name: str
    name_en: str
    parent: str | None = None
    code: str = ""  # SKU prefix part, e.g. "SM" for smartphones
    vat: str = "19"


TOP = [
    CategorySpec("elektronik", "Elektronik", "Electronics", code="EL"),
    CategorySpec("moebel", "Möbel", "Furniture", code="MO"),
    CategorySpec("haushalt", "Haushalt", "Household", code="HH"),
    CategorySpec("lebensmittel", "Lebensmittel", "Food", code="LM", vat="7"),
    CategorySpec("buecher", "Bücher", "Books", code="BU", vat="7"),
]
LEAVES = [
    CategorySpec("smartphones", "Smartphones", "Smartphones", "elektronik", "SM"),
    CategorySpec("laptops", "Laptops", "Laptops", "elektronik", "LT"),
    CategorySpec("fernseher", "Fernseher", "TVs", "elektronik", "TV"),
    CategorySpec("audio", "Audio", "Audio", "elektronik", "AU"),
    CategorySpec("sofas", "Sofas", "Sofas", "moebel", "SO"),
    CategorySpec("schraenke", "Schränke", "Cabinets & wardrobes", "moebel", "SC"),
    CategorySpec("tische", "Tische", "Tables", "moebel", "TI"),
    CategorySpec("stuehle", "Stühle", "Chairs", "moebel", "ST"),
    CategorySpec("kueche", "Küche", "Kitchen", "haushalt", "KU"),
    CategorySpec("haushalt-kaffee", "Kaffee", "Coffee", "haushalt", "KA"),
    CategorySpec("reinigung", "Reinigung", "Cleaning", "haushalt", "RE"),
    CategorySpec("kaffee-tee", "Kaffee & Tee", "Coffee & tea", "lebensmittel", "KT", "7"),
    CategorySpec("suesswaren", "Süßwaren", "Sweets", "lebensmittel", "SU", "7"),
    CategorySpec("romane", "Romane", "Novels", "buecher", "RO", "7"),
    CategorySpec("sachbuecher", "Sachbücher", "Non-fiction", "buecher", "SB", "7"),
    CategorySpec("kochbuecher", "Kochbücher", "Cookbooks", "buecher", "KB", "7"),
]
CATEGORIES = TOP + LEAVES
_TOP_CODE = {c.slug: c.code for c in TOP}


@dataclass
class VariantSpec:
    sku: str
    title: str
    price: Decimal
    on_hand: int


@dataclass
class ProductSpec:
    title: str
    category: str
    brand: str
    description: str
    vat: str
    variants: list[VariantSpec] = field(default_factory=list)


COLOURS = [
    ("Schwarz", "SW"),
    ("Weiß", "WS"),
    ("Blau", "BL"),
    ("Grün", "GN"),
    ("Silber", "SI"),
    ("Rot", "RT"),
]
FABRICS = [
    ("Anthrazit", "AN"),
    ("Hellgrau", "HG"),
    ("Beige", "BE"),
    ("Petrol", "PE"),
    ("Senfgelb", "SG"),
]
WOODS = [("Eiche", "EI"), ("Nussbaum", "NU"), ("Weiß matt", "WM"), ("Buche", "BU")]


ENDINGS = (".99", ".99", ".99", ".95", ".00")


def price_like_a_shop(value: float, ending: str = ".99") -> Decimal:
    """A gross price the way shops write them: 499,00, 1.299,99, 19,95."""
    whole = max(1, int(value))
    if whole >= 300:  # big-ticket items end in 9 euros
        whole = whole - whole % 10 + 9
    return Decimal(f"{whole}{ending}")


def stock_level(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.07:
        return 0  # sold out
    if roll < 0.2:
        return rng.randint(1, 5)  # almost gone
    return rng.randint(6, 200)


# --- per category: (brands, model names, how variants differ, price range, description) -------


def _smartphones(rng):
    brands = {
        "Nordlicht": ["Aurora", "Polaris"],
        "Lumio": ["One", "Neo"],
        "Kestrel": ["K", "KX"],
        "Vento": ["Breeze", "Storm"],
    }
    for brand, lines in brands.items():
        for line in lines:
            for gen in (7, 8, 9):
                for suffix in ("", " Pro") if line not in ("K", "One") else ("", " Lite"):
                    base = (
                        rng.uniform(229, 549)
                        + (gen - 7) * 70
                        + (260 if suffix == " Pro" else -80 if suffix == " Lite" else 0)
                    )
                    storages = [128, 256] + ([512] if suffix == " Pro" else [])
                    colours = rng.sample(COLOURS[:5], 2)
                    variants = [
                        (f"{gb} GB, {c}", f"{gb}-{cc}", base + (gb // 128 - 1) * 110)
                        for gb in storages
                        for c, cc in colours
                    ]
                    screen = rng.choice(["6,1", "6,4", "6,7"])
                    desc = (
                        f"Das {brand} {line} {gen}{suffix} vereint ein {screen}-Zoll-OLED-Display mit 120 Hz, eine "
                        f"{rng.choice(['50', '64', '108'])}-Megapixel-Hauptkamera und einen Akku, der locker durch den Tag kommt. "
                        f"5G, Dual-SIM (eSIM) und {rng.choice(['IP67', 'IP68'])}-Schutz gegen Staub und Wasser. "
                        "Lieferumfang: Smartphone, USB-C-Kabel, Kurzanleitung. Ohne Netzteil."
                    )
                    yield f"{brand} {line} {gen}{suffix}", brand, desc, variants


def _laptops(rng):
    brands = {
        "Feldmann": ["Book", "Book Pro"],
        "Lumio": ["Air", "Studio"],
        "Alpina": ["Workmate", "Travel"],
    }
    for brand, lines in brands.items():
        for line in lines:
            for size in ("13", "14", "15", "16"):
                if rng.random() < 0.25:
                    continue
                base = (
                    rng.uniform(549, 999)
                    + (int(size) - 13) * 60
                    + (350 if "Pro" in line or line == "Studio" else 0)
                )
                configs = [
                    ("8 GB RAM, 256 GB SSD", "8-256", 0),
                    ("16 GB RAM, 512 GB SSD", "16-512", 200),
                    ("32 GB RAM, 1 TB SSD", "32-1000", 520),
                ]
                configs = configs[: rng.choice([2, 3])]
                variants = [(t, code, base + extra) for t, code, extra in configs]
                desc = (
                    f"Das {brand} {line} {size} ist ein {size}-Zoll-Notebook mit mattem {rng.choice(['Full-HD', 'WQXGA', '2,8K'])}-Display, "
                    f"Aluminiumgehäuse und bis zu {rng.choice([12, 14, 16, 18])} Stunden Akkulaufzeit. Tastatur mit deutschem Layout (QWERTZ) "
                    "und Beleuchtung, Wi-Fi 6E, zwei USB-C-Anschlüsse mit Ladefunktion. Betriebssystem vorinstalliert."
                )
                yield f"{brand} {line} {size}", brand, desc, variants


def _tvs(rng):
    brands = {
        "Rheinklang": ["Vision", "Cinema"],
        "Tessa": ["Smart", "QLED"],
        "Hansa Vision": ["HV", "HV OLED"],
    }
    for brand, lines in brands.items():
        for line in lines:
            for year in (2025, 2026):
                base = (
                    rng.uniform(299, 599)
                    + (500 if "OLED" in line or line == "Cinema" else 0)
                    + (year - 2025) * 80
                )
                sizes = rng.sample([43, 50, 55, 65, 75], 3)
                variants = [
                    (f"{s} Zoll ({round(s * 2.54)} cm)", str(s), base + (s - 43) * 28)
                    for s in sorted(sizes)
                ]
                desc = (
                    f"{brand} {line} ({year}): 4K-UHD-Fernseher mit HDR10+ und Dolby Vision, {rng.choice(['Triple-Tuner (DVB-T2/C/S2)', 'Twin-Triple-Tuner'])}, "
                    "Smart-TV mit allen gängigen Streaming-Apps und Sprachsteuerung. Energieeffizienzklasse "
                    f"{rng.choice(['E', 'F', 'G'])} (SDR). Wandhalterung nach VESA-Norm möglich."
                )
                yield f"{brand} {line} {year}", brand, desc, variants


def _audio(rng):
    kinds = [
        (
            "Kopfhörer Over-Ear",
            79,
            349,
            "Over-Ear-Kopfhörer mit aktiver Geräuschunterdrückung, 30 Stunden Laufzeit und Schnellladen.",
        ),
        (
            "In-Ear-Kopfhörer",
            39,
            229,
            "Kabellose In-Ear-Kopfhörer mit Ladecase, Transparenzmodus und IPX4-Spritzwasserschutz.",
        ),
        (
            "Bluetooth-Lautsprecher",
            29,
            199,
            "Tragbarer Lautsprecher mit kräftigem Bass, wasserdicht nach IP67, 20 Stunden Akku.",
        ),
        (
            "Soundbar",
            149,
            699,
            "Soundbar mit Subwoofer und Dolby Atmos, Anschluss über HDMI eARC, steuerbar per App.",
        ),
        (
            "Plattenspieler",
            149,
            499,
            "Riemengetriebener Plattenspieler mit integriertem Vorverstärker und Bluetooth-Ausgang.",
        ),
    ]
    brands = ["Rheinklang", "Hansa Audio", "Kestrel"]
    for kind, lo, hi, text in kinds:
        for brand in brands:
            for model in rng.sample(
                ["Pulse", "Echo", "Studio", "Mono", "Tide"], 2 if kind != "Plattenspieler" else 1
            ):
                base = rng.uniform(lo, hi)
                colours = rng.sample(COLOURS[:3], rng.choice([1, 2, 3]))
                variants = [(c, cc, base) for c, cc in colours]
                yield f"{brand} {model} {kind}", brand, f"{brand} {model}: {text}", variants


def _sofas(rng):
    names = [
        "Bergen",
        "Lund",
        "Malmö",
        "Sylt",
        "Rügen",
        "Husum",
        "Kiel",
        "Borkum",
        "Aarhus",
        "Föhr",
    ]
    shapes = [("3-Sitzer-Sofa", 649, 1199), ("Ecksofa", 999, 1899), ("Schlafsofa", 549, 1099)]
    for name in names:
        for shape, lo, hi in rng.sample(shapes, 2):
            base = rng.uniform(lo, hi)
            fabrics = rng.sample(FABRICS, 3)
            variants = [(f"Bezug {f}", fc, base) for f, fc in fabrics]
            desc = (
                f"{shape} {name} mit Federkern und kuschelweichen Kissen, Bezug aus pflegeleichtem Webstoff "
                f"(abnehmbar). Maße ca. {rng.choice([210, 228, 245, 268])} × {rng.choice([88, 92, 95])} cm, Sitzhöhe 45 cm. "
                "Lieferung frei Verwendungsstelle mit Spedition, Aufbau gegen Aufpreis."
            )
            yield f"{shape} {name}", "Hansa Wohnen", desc, variants


def _cabinets(rng):
    types = [
        ("Kleiderschrank", 299, 899),
        ("Sideboard", 199, 599),
        ("Bücherregal", 89, 299),
        ("Highboard", 249, 649),
    ]
    names = ["Elbe", "Weser", "Mosel", "Isar", "Saale"]
    for kind, lo, hi in types:
        for name in names:
            base = rng.uniform(lo, hi)
            widths = sorted(rng.sample([80, 100, 150, 200], 2))
            wood, wc = rng.choice(WOODS)
            variants = [
                (f"{w} cm breit, {wood}", f"{w}-{wc}", base + (w - 80) * 2.2) for w in widths
            ]
            desc = (
                f"{kind} {name} in {wood}-Optik mit Soft-Close-Türen und verstellbaren Einlegeböden. "
                "Selbstmontage mit bebilderter Anleitung, Kippsicherung im Lieferumfang."
            )
            yield f"{kind} {name}", "Feldmann Möbel", desc, variants


def _tables(rng):
    types = [("Esstisch", 249, 999), ("Couchtisch", 99, 399), ("Schreibtisch", 149, 549)]
    names = ["Oslo", "Bremen", "Gent", "Turku", "Lübeck", "Riga"]
    for kind, lo, hi in types:
        for name in names:
            base = rng.uniform(lo, hi)
            sizes = [("140 × 80 cm", "140"), ("160 × 90 cm", "160"), ("180 × 90 cm", "180")]
            chosen = sizes[: rng.choice([1, 2, 3])]
            variants = [
                (f"{s}, {rng.choice(WOODS)[0]}", code, base + i * 60)
                for i, (s, code) in enumerate(chosen)
            ]
            desc = f"{kind} {name}: massive Platte mit geölter Oberfläche und stabilem Gestell aus pulverbeschichtetem Stahl. Belastbar bis 80 kg."
            yield f"{kind} {name}", "Alpina Living", desc, variants


def _chairs(rng):
    types = [
        ("Stuhl", 59, 199),
        ("Bürostuhl", 129, 549),
        ("Barhocker", 49, 149),
        ("Sessel", 199, 599),
    ]
    names = ["Anna", "Ben", "Clara", "Emil", "Frida"]
    for kind, lo, hi in types:
        for name in names:
            base = rng.uniform(lo, hi)
            fabrics = rng.sample(FABRICS, rng.choice([2, 3]))
            variants = [(f, fc, base) for f, fc in fabrics]
            desc = f"{kind} {name} mit ergonomisch geformter Rückenlehne und gepolsterter Sitzfläche. Bezug in {len(fabrics)} Farben."
            yield f"{kind} {name}", "Hansa Wohnen", desc, variants


def _kitchen(rng):
    items = [
        (
            "Pfannenset 3-teilig",
            49,
            129,
            "Antihaftbeschichtete Pfannen (20/24/28 cm), für alle Herdarten inkl. Induktion.",
        ),
        (
            "Kochtopfset 5-teilig",
            69,
            199,
            "Edelstahltöpfe mit Glasdeckeln und Messskala, spülmaschinengeeignet.",
        ),
        (
            "Messerblock",
            59,
            249,
            "Messerblock aus Buche mit fünf geschmiedeten Messern aus rostfreiem Stahl.",
        ),
        (
            "Wasserkocher",
            24,
            89,
            "1,7 Liter, 2200 Watt, Temperaturwahl 40–100 °C, Warmhaltefunktion.",
        ),
        (
            "Standmixer",
            49,
            199,
            "1,5-Liter-Glasbehälter, 1200 Watt, sechs Programme, Ice-Crush-Funktion.",
        ),
        (
            "Küchenmaschine",
            199,
            599,
            "Knetmaschine mit 5-Liter-Edelstahlschüssel, Knethaken, Rührbesen und Schneebesen.",
        ),
        ("Toaster", 24, 79, "Zwei Schlitze, sieben Bräunungsstufen, Brötchenaufsatz."),
    ]
    for item, lo, hi, text in items:
        for brand in ("Brenner", "Küchenwerk", "Feldmann"):
            base = rng.uniform(lo, hi)
            colours = rng.sample(COLOURS[:6], rng.choice([1, 2]))
            variants = [(c, cc, base) for c, cc in colours]
            yield f"{brand} {item}", brand, f"{item} von {brand}: {text}", variants


def _coffee_machines(rng):
    items = [
        (
            "Kaffeevollautomat",
            349,
            1199,
            "Kaffeevollautomat mit Kegelmahlwerk, Milchsystem und 15 bar Pumpendruck.",
        ),
        (
            "Siebträgermaschine",
            249,
            899,
            "Siebträgermaschine mit Dampflanze und Thermoblock, in 45 Sekunden betriebsbereit.",
        ),
        ("Filterkaffeemaschine", 39, 149, "Für bis zu 10 Tassen, mit Thermokanne und Timer."),
        ("Kaffeemühle", 39, 249, "Elektrische Kaffeemühle mit Kegelmahlwerk und 30 Mahlgraden."),
        ("Milchaufschäumer", 29, 99, "Für heißen und kalten Milchschaum, induktiv beheizt."),
    ]
    for item, lo, hi, text in items:
        for brand in ("Brenner", "Caffè Milano", "Küchenwerk"):
            base = rng.uniform(lo, hi)
            colours = rng.sample([("Schwarz", "SW"), ("Edelstahl", "ES"), ("Weiß", "WS")], 2)
            variants = [(c, cc, base + (20 if cc == "ES" else 0)) for c, cc in colours]
            yield f"{brand} {item}", brand, f"{text} Ein Gerät von {brand}.", variants


def _cleaning(rng):
    items = [
        (
            "Akku-Staubsauger",
            149,
            499,
            "Kabelloser Staubsauger mit bis zu 60 Minuten Laufzeit und Wandhalterung.",
        ),
        (
            "Saugroboter",
            199,
            799,
            "Saug- und Wischroboter mit Laser-Navigation, App-Steuerung und Absaugstation.",
        ),
        ("Dampfreiniger", 79, 249, "Reinigt Fliesen, Fenster und Polster ganz ohne Chemie."),
        (
            "Fenstersauger",
            49,
            99,
            "Streifenfreie Fenster in Minuten, mit Sprühflasche und Mikrofaserbezug.",
        ),
        ("Bodenwischer-Set", 19, 59, "Flachmopp mit Schleuder-Eimer und zwei Mikrofaserbezügen."),
    ]
    for item, lo, hi, text in items:
        for brand in ("Sauberland", "Feldmann", "Vento"):
            base = rng.uniform(lo, hi)
            yield f"{brand} {item}", brand, f"{item}: {text}", [("", "", base)]


def _coffee_tea(rng):
    coffees = [
        "Espresso Napoli",
        "Crema Classico",
        "Café Hamburg",
        "Hochland Äthiopien",
        "Bio Peru Organico",
        "Entkoffeiniert Mild",
    ]
    teas = [
        "Ostfriesen-Mischung",
        "Darjeeling First Flush",
        "Grüner Sencha",
        "Earl Grey",
        "Rooibos Vanille",
        "Pfefferminze Bio",
    ]
    for name in coffees:
        for form in ("ganze Bohne", "gemahlen"):
            base = rng.uniform(5.5, 9.5)
            sizes = [("250 g", "250", 1.0), ("500 g", "500", 1.85), ("1 kg", "1000", 3.4)]
            variants = [(label, code, base * factor) for label, code, factor in sizes]
            desc = (
                f"{name}: frisch gerösteter Kaffee ({form}), Röstung in kleinen Chargen in Bremen. "
                f"Aromen von {rng.choice(['dunkler Schokolade und Nuss', 'Karamell und Kakao', 'roten Beeren und Jasmin', 'Mandel und Honig'])}."
            )
            yield f"Kaffee {name} ({form})", "Rösterei Hansa", desc, variants
    for name in teas:
        base = rng.uniform(3.5, 8)
        variants = [("100 g", "100", base), ("250 g", "250", base * 2.2)]
        yield (
            f"Tee {name}",
            "Teehaus Nord",
            f"{name}: loser Tee in wiederverschließbarer Aromaschutz-Tüte.",
            variants,
        )


def _sweets(rng):
    items = [
        "Vollmilchschokolade mit Haselnüssen",
        "Zartbitterschokolade 70 %",
        "Marzipanbrot",
        "Lakritz-Mischung",
        "Fruchtgummi Bärchen",
        "Nougat-Pralinen",
        "Lebkuchen-Herzen",
        "Butterkekse",
        "Karamellbonbons",
        "Baumkuchen-Spitzen",
    ]
    for item in items:
        base = rng.uniform(1.49, 9.99)
        yield (
            item,
            rng.choice(["Süßes Lübeck", "Konditorei Sommer", "Nordlicht Confiserie"]),
            f"{item} – nach Traditionsrezept hergestellt, ohne künstliche Farbstoffe.",
            [("", "", base)],
        )


def _books(kind, titles, price_hc, price_tb):
    def gen(rng):
        for title, author in titles:
            variants = [
                ("Gebundene Ausgabe", "HC", price_hc(rng)),
                ("Taschenbuch", "TB", price_tb(rng)),
            ]
            desc = (
                f"„{title}“ von {author}. {kind}, {rng.randint(180, 620)} Seiten, deutsche Ausgabe."
            )
            yield f"{title} ({author})", author, desc, variants

    return gen


NOVELS = [
    ("Das Haus am Deich", "Greta Albers"),
    ("Nebel über der Elbe", "Jonas Krüger"),
    ("Die Uhrmacherin", "Maren Voss"),
    ("Sommer in Husum", "Ida Petersen"),
    ("Der letzte Zug nach Triest", "Paul Winter"),
    ("Salz und Asche", "Lea Hoffmann"),
    ("Die Stunde der Kraniche", "Theo Brandt"),
    ("Winterlicht", "Nora Lindqvist"),
    ("Das Erbe der Weberin", "Clara Funke"),
    ("Im Schatten der Lindenallee", "Hanna Roth"),
    ("Kaltes Wasser", "Felix Maurer"),
    ("Die Buchhändlerin von Lübeck", "Sophie Engel"),
]
NONFICTION = [
    ("Kleine Geschichte des Geldes", "Dr. Martin Keller"),
    ("Warum wir schlafen", "Prof. Anna Brückner"),
    ("Das Klima und wir", "Jakob Lorenz"),
    ("Denken wie ein Schachspieler", "Elias Novak"),
    ("Die Hanse", "Dr. Karin Meyer"),
    ("Gärtnern auf kleinem Raum", "Lisa Vogel"),
    ("Programmieren lernen mit Python", "Tobias Schulz"),
    ("Die Kunst der Pause", "Miriam Ahrens"),
    ("Sterne über Deutschland", "Dr. Ole Hansen"),
    ("Steuern einfach erklärt", "Bernd Kaiser"),
]
COOKBOOKS = [
    ("Norddeutsch kochen", "Heike Lüders"),
    ("Einfach vegetarisch", "Jana Berger"),
    ("Backen mit Oma", "Ruth Sommer"),
    ("Die schnelle Feierabendküche", "Max Fischer"),
    ("Brot backen", "Lukas Bäcker"),
    ("Ein Jahr Gemüse", "Eva Hartmann"),
    ("Suppen und Eintöpfe", "Gerda Wolff"),
    ("Italien daheim", "Marco Rossi"),
]


def _book_price(lo: int, hi: int):
    # Books have fixed prices in Germany (Buchpreisbindung); publishers like whole euros.
    return lambda rng: Decimal(
        rng.choice([f"{e}.00" for e in range(lo, hi + 1)] + [f"{e}.95" for e in range(lo, hi)])
    )


GENERATORS = {
    "smartphones": _smartphones,
    "laptops": _laptops,
    "fernseher": _tvs,
    "audio": _audio,
    "sofas": _sofas,
    "schraenke": _cabinets,
    "tische": _tables,
    "stuehle": _chairs,
    "kueche": _kitchen,
    "haushalt-kaffee": _coffee_machines,
    "reinigung": _cleaning,
    "kaffee-tee": _coffee_tea,
    "suesswaren": _sweets,
    "romane": _books("Roman", NOVELS, _book_price(20, 26), _book_price(11, 14)),
    "sachbuecher": _books("Sachbuch", NONFICTION, _book_price(18, 32), _book_price(12, 16)),
    "kochbuecher": _books("Kochbuch", COOKBOOKS, _book_price(22, 34), _book_price(14, 18)),
}


def products() -> list[ProductSpec]:
    """The whole assortment, in a stable order with stable SKUs."""
    rng = random.Random(SEED)  # noqa: S311  (seeded: the same demo every time, no secret)
    out: list[ProductSpec] = []
    for leaf in LEAVES:
        prefix = f"{_TOP_CODE[leaf.parent]}-{leaf.code}"
        for n, (title, brand, desc, variants) in enumerate(GENERATORS[leaf.slug](rng), start=1):
            spec = ProductSpec(
                title=title, category=leaf.slug, brand=brand, description=desc, vat=leaf.vat
            )
            ending = rng.choice(ENDINGS)  # one price style per product
            for vtitle, vcode, price in variants:
                sku = f"{prefix}-{n:04d}" + (f"-{vcode}" if vcode else "")
                amount = (
                    price
                    if isinstance(price, Decimal)
                    else price_like_a_shop(price, ".99" if price < 20 else ending)
                )
                spec.variants.append(
                    VariantSpec(sku=sku, title=vtitle, price=amount, on_hand=stock_level(rng))
                )
            out.append(spec)
    return out
