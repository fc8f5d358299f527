"""The world's lexicon: topics with their nouns, verbs, adjectives and roles; characters
with gender; towns; sentiment words; quantities; and the tag of every word form.

Every word form has exactly one tag (checked at import), so the oracle tags a sentence by
dictionary look-up and never has to guess between readings. Tags carry their latent value:
`N:cooking`, `V_PAST:sea`, `NAME:f`, `SENT:positive`, `NUM:7`. Plain function words are their
own tag (`the`, `was`, `how`).
"""

from __future__ import annotations

from dataclasses import dataclass

# topic -> (object nouns, verbs [base or base:past], adjectives, roles). Plural and 3rd-person
# forms follow English spelling rules (`plural`, `third_person`); irregular pasts are written.
_TOPICS: dict[str, tuple[str, str, str, str]] = {
    "weather": (
        "cloud storm raindrop snowflake rainbow forecast umbrella breeze frost hailstone puddle "
        "drought blizzard sunrise sunset gust drizzle thermometer barometer weathervane icicle "
        "heatwave snowstorm mist dewdrop thundercloud raincoat windmill gale monsoon",
        "predict measure photograph chart dread survive track observe shelter:sheltered "
        "endure calculate sketch",
        "cloudy rainy windy foggy chilly stormy sunny humid frosty drizzly",
        "forecaster meteorologist stormchaser weatherman"),
    "cooking": (
        "soup stew pie cake bread loaf:loaves dumpling pancake omelette sauce pudding biscuit "
        "noodle casserole recipe saucepan skillet oven ladle spatula pastry muffin cookie "
        "meatball salad porridge dough kettle cupcake tart",
        "cook bake stir roast:roasted fry:fried simmer season slice whisk knead taste:tasted "
        "garnish",
        "salty sweet crispy spicy tender savory buttery sour fluffy delicious",
        "baker chef butcher caterer"),
    "sea": (
        "boat ship wave seaweed lighthouse harbor paddle mast oar buoy reef seashell crab "
        "jellyfish dolphin whale lobster seagull tide net pier keel raft canoe yacht "
        "shipwreck compass lifeboat octopus starfish",
        "sail:sailed row:rowed steer dock:docked anchor:anchored navigate fish:fished "
        "moor:moored launch:launched capsize rescue salvage",
        "salty:-- foamy choppy briny sandy tidal nautical coastal calm:-- wavy",
        "sailor captain fisherman lighthousekeeper"),
    "space": (
        "rocket planet comet asteroid star moon galaxy telescope satellite starship crater "
        "astronaut:-- spaceship meteor nebula capsule probe launchpad spacesuit module "
        "constellation eclipse quasar cosmonaut:-- observatory shuttle antenna lander "
        "sunspot supernova",
        "orbit:orbited launch:-- explore:explored map:mapped study:studied scan:scanned "
        "photograph:-- land:landed pilot:piloted detect:detected chart:-- beam:beamed",
        "lunar stellar cosmic orbital distant:-- vast:-- starry galactic solar icy",
        "astronaut cosmonaut astronomer stargazer"),
    "music": (
        "song melody violin piano guitar drum flute trumpet chord concert symphony choir "
        "harp cello banjo lute tambourine rhythm harmony lullaby anthem ballad tune orchestra "
        "opera clarinet saxophone metronome hymn sonata",
        "sing:sang play:played compose:composed hum:hummed tune:-- rehearse:rehearsed "
        "strum:strummed record:recorded whistle:whistled conduct:conducted perform:performed "
        "practice:practiced",
        "musical melodic loud quiet harmonic rhythmic tuneful catchy lively soulful",
        "singer drummer composer violinist"),
    "sport": (
        "ball goal match race trophy medal racket bat helmet whistle:-- stadium team "
        "referee:-- marathon tournament jersey sneaker skateboard hoop puck javelin hurdle "
        "scoreboard playoff relay champion:-- dumbbell treadmill glove:-- net:--",
        "kick:kicked throw:threw catch:caught win:won score:scored pass:passed "
        "tackle:tackled dribble:dribbled serve:served sprint:sprinted coach:coached "
        "train:trained",
        "athletic fast:-- nimble sporty agile strong:-- fit:-- competitive swift muscular",
        "athlete runner goalkeeper referee"),
    "farming": (
        "cow lamb pig goat chicken tractor barn granary hoe scarecrow haystack "
        "wheat:-- corn:-- potato:potatoes turnip carrot cabbage pumpkin orchard apple pear "
        "hen duck horse fence furrow seed:-- beehive pitchfork trough",
        "plant:planted plough:ploughed harvest:harvested milk:milked feed:fed shear:sheared "
        "sow:sowed water:watered herd:herded pick:picked dig:dug weed:weeded",
        "ripe muddy fertile rural rustic leafy plump grassy dusty golden",
        "farmer shepherd milkmaid beekeeper"),
    "medicine": (
        "pill gauze syringe fever cough wound splint stethoscope clinic hospital "
        "prescription vaccine ointment tablet symptom fracture rash headache patient "
        "injection plaster crutch scalpel thermometer:-- antidote remedy:remedies "
        "infection stretcher ambulance vitamin",
        "heal:healed treat:treated cure:cured examine:examined bandage:bandaged "
        "prescribe:prescribed diagnose:diagnosed inject:injected soothe:soothed "
        "x-ray:-- stitch:stitched vaccinate:vaccinated monitor:monitored",
        "sterile feverish medical healthy sickly clinical painful swollen chronic contagious",
        "doctor nurse surgeon pharmacist"),
    "trade": (
        "coin market stall merchant:-- bargain price invoice ledger bazaar barrel crate "
        "spice silk carpet jewel basket parcel warehouse shop shopkeeper:-- coupon receipt "
        "wagon caravan trinket lantern bead scale purse cart",
        "sell:sold buy:bought trade:traded barter:bartered haggle:haggled weigh:weighed "
        "pack:packed auction:auctioned value:valued export:exported import:imported "
        "deliver:delivered",
        "expensive cheap costly precious rare exotic valuable bargain:-- wholesale pricey",
        "merchant trader shopkeeper peddler"),
    "school": (
        "book lesson pencil notebook blackboard chalk desk homework exam essay classroom "
        "ruler eraser textbook alphabet diploma library quiz timetable satchel backpack "
        "spelling poem atlas dictionary:dictionaries globe crayon recess lecture grammar",
        "read:-- write:wrote study:-- learn:learned teach:taught spell:spelled "
        "memorize:memorized grade:graded recite:recited copy:copied solve:solved "
        "revise:revised erase:erased",
        "clever studious difficult easy tidy boring curious wise neat scholarly",
        "teacher pupil student headmaster"),
    "travel": (
        "suitcase ticket passport map:-- journey:journeys train:-- bus:buses luggage "
        "postcard hotel tent trail bridge highway tunnel carriage station voyage souvenir "
        "guidebook backpacker:-- inn mountain valley road ferry airplane compass:-- "
        "railway border",
        "visit:visited cross:crossed pack:-- tour:toured hike:hiked wander:wandered "
        "book:-- board:boarded unpack:unpacked reach:reached drive:drove climb:climbed "
        "explore:--",
        "foreign remote scenic dusty:-- long:-- winding faraway crowded touristy exotic:--",
        "traveler pilgrim explorer tourist"),
    "war": (
        "sword shield spear arrow bow:-- cannon fortress castle banner armor army soldier:-- "
        "battle siege trench helmet:-- musket dagger catapult rampart tower drum:-- "
        "general:-- cavalry:cavalries garrison truce treaty knight:-- archer:-- "
        "bugle flag",
        "attack:attacked defend:defended conquer:conquered besiege:besieged "
        "surrender:surrendered capture:captured charge:charged guard:guarded "
        "ambush:ambushed fortify:fortified retreat:retreated invade:invaded",
        "brave fierce loyal bloody armored heroic victorious defeated mighty grim",
        "soldier knight general archer"),
    "forest": (
        "tree oak pine acorn mushroom fern moss squirrel fox owl stag badger hedgehog rabbit "
        "woodpecker log stump branch twig leaf:leaves bush berry:berries nest burrow "
        "waterfall pinecone toadstool bramble clearing beetle",
        "chop:chopped climb:-- gather:gathered forage:foraged prune:pruned hunt:hunted "
        "track:-- trap:trapped spot:spotted collect:collected follow:followed stack:stacked",
        "wild shady mossy dense woody green leafy:-- ancient hollow thorny",
        "woodcutter ranger hunter forester"),
    "art": (
        "painting canvas brush easel sculpture statue portrait sketch:-- palette mural "
        "drawing gallery frame clay chisel pastel:-- watercolor charcoal landscape mosaic "
        "museum exhibition studio crayon:-- pottery vase collage pencil:-- masterpiece "
        "fresco",
        "paint:painted draw:drew sculpt:sculpted carve:carved glaze:glazed sketch:-- "
        "exhibit:exhibited display:displayed restore:restored admire:admired "
        "varnish:varnished mold:molded",
        "colorful vivid abstract pale bright artistic elegant ornate glossy faded",
        "painter sculptor potter artist"),
}

# Entries marked `:--` above are already used by another topic; they are skipped there so each
# word form belongs to exactly one topic.
# Each topic keeps only its first nouns, verbs, adjectives and roles (in that order): a small
# model trained for a few hundred steps learns a tight topic (8 nouns, 4 verbs) well enough
# to keep its sentences on one topic; with 30 nouns and 12 verbs a topic was too diffuse
# (24 % of a 300-step teacher's sentences grammatical, best topic F1 0.13).
TOPIC_SIZES = (8, 4, 4, 2)
# Likewise only the first names and towns are used (the lists are kept for variety later).
N_NAMES_PER_GENDER = 10
N_TOWNS = 12

_FEMALE_NAMES = (
    "Anna Beth Clara Daisy Emma Fiona Grace Hannah Iris Julia Kate Lily Mia Nora Olive Paula "
    "Rosa Sara Tina Una Vera Wendy Alice Bella Cora Dora Ella Flora Gemma Holly Ivy Jane "
    "Lena Maya Nina Ruth Sophie Tessa Zoe Greta").split()
_MALE_NAMES = (
    "Adam Ben Carl David Eric Frank George Harry Ivan Tom Karl Leo Max Nick Oscar Paul "
    "Quinn Ryan Sam Jack Victor Walter Alex Bruno Colin Dennis Edgar Felix Gavin Hugo Jonas "
    "Kevin Liam Marco Noah Otto Peter Simon Theo Hector").split()
_TOWNS = (
    "Northwick Elmbury Ashford Bramley Coldharbor Dunmore Eastfield Fairhaven Glenrock "
    "Highmoor Ironbridge Upton Larkspur Millbrook Newhaven Oakdale Pinewood Queensport "
    "Redcliff Stonehill Thornbury Kingsbury Valewood Westmere Yarrow Ambleside Brookfield "
    "Copperton Dalby Eldermoor Foxley Greystone Hollowell Ivybridge Juniper Kettering "
    "Lowmarsh Marwick Netherby Oldcastle").split()
FEMALE_NAMES = _FEMALE_NAMES[:N_NAMES_PER_GENDER]
MALE_NAMES = _MALE_NAMES[:N_NAMES_PER_GENDER]
TOWNS = _TOWNS[:N_TOWNS]
SENTIMENT = {
    "positive": "happy glad cheerful proud calm hopeful delighted pleased joyful grateful "
                "content thrilled".split(),
    "negative": "sad angry gloomy tired worried upset nervous bitter lonely annoyed anxious "
                "miserable".split(),
}
NUMBERS = ("one two three four five six seven eight nine ten eleven twelve").split()

PRONOUN = {"f": "she", "m": "he"}
POSSESSIVE = {"f": "her", "m": "his"}
# Function words the grammar writes literally; each is its own tag.
FUNCTION_WORDS = (
    "the a an in from to at about with and then later meanwhile talk turned turns turn "
    "there called it day for how many where what did does do will not yes no was is were are "
    "be gave gives give report news").split()
PUNCT = (".", ",", "?", ":")


def plural(noun: str) -> str:
    """English plural of a regular noun (box -> boxes, story -> stories, cake -> cakes)."""
    if noun.endswith(("s", "x", "ch", "sh", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def third_person(verb: str) -> str:
    """Present 3rd person singular (cook -> cooks, fix -> fixes, study -> studies)."""
    if verb.endswith(("s", "x", "ch", "sh", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def past(verb: str) -> str:
    """Regular past tense (cook -> cooked, bake -> baked, study -> studied)."""
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


@dataclass(frozen=True)
class Topic:
    """One topic's words. `nouns[i]` and `plurals[i]` are the same noun; verbs are
    (base, 3rd person, past) triples."""

    name: str
    nouns: tuple[str, ...]
    plurals: tuple[str, ...]
    verbs: tuple[tuple[str, str, str], ...]
    adjectives: tuple[str, ...]
    roles: tuple[str, ...]


def _entries(text: str) -> list[tuple[str, str | None]]:
    """'word word:form word:--' -> [(word, form or None)]; `:--` entries are dropped."""
    out = []
    for item in text.split():
        word, _, form = item.partition(":")
        if form != "--":
            out.append((word, form or None))
    return out


def _topic(name: str, spec: tuple[str, str, str, str]) -> Topic:
    nouns_t, verbs_t, adjs_t, roles_t = spec
    n_nouns, n_verbs, n_adjs, n_roles = TOPIC_SIZES
    nouns = _entries(nouns_t)[:n_nouns]
    verbs = [(b, third_person(b), p or past(b)) for b, p in _entries(verbs_t)[:n_verbs]]
    return Topic(name, tuple(n for n, _ in nouns), tuple(p or plural(n) for n, p in nouns),
                 tuple(verbs), tuple(a for a, _ in _entries(adjs_t)[:n_adjs]),
                 tuple(r for r, _ in _entries(roles_t)[:n_roles]))


TOPICS: dict[str, Topic] = {name: _topic(name, spec) for name, spec in _TOPICS.items()}
TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)
GENDER_OF: dict[str, str] = {**{n: "f" for n in FEMALE_NAMES}, **{n: "m" for n in MALE_NAMES}}
NUMBER_VALUE: dict[str, int] = {w: i + 1 for i, w in enumerate(NUMBERS)}


def _build_tags() -> dict[str, str]:
    """word form -> tag; raises if a form would get two tags (the oracle needs one)."""
    tags: dict[str, str] = {}

    def put(word: str, tag: str) -> None:
        if word in tags and tags[word] != tag:
            raise ValueError(f"lexicon: {word!r} is both {tags[word]} and {tag}")
        tags[word] = tag

    for t in TOPICS.values():
        for n, p in zip(t.nouns, t.plurals):
            put(n, f"N:{t.name}")
            put(p, f"NS:{t.name}")
        for base, third, pst in t.verbs:
            put(base, f"VB:{t.name}")
            put(third, f"VZ:{t.name}")
            put(pst, f"VD:{t.name}")
        for a in t.adjectives:
            put(a, f"ADJ:{t.name}")
        for r in t.roles:
            put(r, f"ROLE:{t.name}")
    for name, g in GENDER_OF.items():
        put(name, f"NAME:{g}")
    for town in TOWNS:
        put(town, "TOWN")
    for value, words in SENTIMENT.items():
        for w in words:
            put(w, f"SENT:{value}")
    for w in NUMBERS:
        put(w, f"NUM:{NUMBER_VALUE[w]}")
    for g in ("f", "m"):
        put(PRONOUN[g], f"PRON:{g}")
        put(POSSESSIVE[g], f"POSS:{g}")
    for w in FUNCTION_WORDS + list(PUNCT):
        put(w, w)
    return tags


TAGS: dict[str, str] = _build_tags()
"""Every word form of the world -> its tag."""
VOCABULARY: tuple[str, ...] = tuple(sorted(w for w in TAGS if w not in PUNCT))
