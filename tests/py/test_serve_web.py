"""The web chat of `silica serve` in a real browser: Debian's chromium driven by Selenium
(chromium-driver).  Type a message and press Enter: the streamed answer equals the API's answer for
the same seed and settings; the Stop button (and the server) end a long answer; the model picker
switches models.  The oracle is the server's own OpenAI route, asked with the real `openai` client.
"""
import json
import shutil
import time

import openai
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from test_serve import DEMO, Server, llama3  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def web(llama3):  # noqa: F811
    s = Server(DEMO, llama3, "--parallel", "2", "--ctx", "512")
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        o.add_argument(a)
    o.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    d = webdriver.Chrome(options=o, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    d.get(s.url + "/")
    yield s, d
    d.quit()
    rc, err = s.stop()
    assert rc == 0, err


SETTINGS = {"temperature": "0.7", "top_p": "0.95", "top_k": "40", "min_p": "0.05", "repeat_penalty": "1.1",
            "max_tokens": "16", "seed": "5"}


def set_field(d, name, value):
    e = d.find_element(By.ID, name)
    e.clear()
    e.send_keys(value)


def ask(d, text, timeout=120):
    box = d.find_element(By.ID, "input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)   # Enter sends
    WebDriverWait(d, 10).until(lambda x: not x.find_element(By.ID, "stop").get_property("disabled"))
    WebDriverWait(d, timeout).until(lambda x: x.find_element(By.ID, "stop").get_property("disabled"))


def stored(d):
    return json.loads(d.execute_script("return localStorage.getItem('silica.convs')"))


def api_answer(s, model, text, max_tokens=16):
    r = s.openai().chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens, temperature=0.7,
        top_p=0.95, seed=5, extra_body={"top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1})
    return r.choices[0].message.content


def test_page_answers_like_the_api(web):
    s, d = web
    WebDriverWait(d, 20).until(lambda x: len(Select(x.find_element(By.ID, "model")).options) == 2)
    assert [o.text for o in Select(d.find_element(By.ID, "model")).options] == ["demo", "llama3"]
    d.find_element(By.ID, "toggle").click()
    assert d.find_element(By.ID, "toggle").get_attribute("aria-expanded") == "true"
    for k, v in SETTINGS.items():
        set_field(d, k, v)
    # every control has a label
    for e in d.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
        assert e.find_elements(By.XPATH, "ancestor::label") or d.find_elements(
            By.CSS_SELECTOR, f"label[for='{e.get_attribute('id')}']"), e.get_attribute("id")
    d.find_element(By.ID, "new").click()
    ask(d, "Once upon a time")
    msgs = stored(d)[0]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["content"] == api_answer(s, "demo", "Once upon a time") and msgs[1]["content"]
    shown = d.find_elements(By.CSS_SELECTOR, ".msg.assistant .body")[-1].text
    assert shown.split()[:2] == msgs[1]["content"].split()[:2]
    assert "tok/s" in d.find_element(By.ID, "stats").text and "MiB RSS" in d.find_element(By.ID, "stats").text


def test_stop_button_ends_the_answer(web):
    s, d = web
    before = s.metrics()["silica_requests_cancelled_total"]
    set_field(d, "max_tokens", "480")
    d.find_element(By.ID, "new").click()
    box = d.find_element(By.ID, "input")
    box.send_keys("Tell me a very long story")
    box.send_keys(Keys.ENTER)
    WebDriverWait(d, 60).until(lambda x: len(x.find_elements(By.CSS_SELECTOR, ".msg.assistant .body p")) > 0)
    d.find_element(By.ID, "stop").click()
    WebDriverWait(d, 10).until(lambda x: x.find_element(By.ID, "stop").get_property("disabled"))
    for _ in range(100):
        m = s.metrics()
        if m["silica_requests_cancelled_total"] > before and m["silica_slots_active"] == 0:
            break
        time.sleep(0.1)
    assert m["silica_requests_cancelled_total"] == before + 1 and m["silica_slots_active"] == 0
    set_field(d, "max_tokens", "16")


def test_model_picker_switches(web):
    s, d = web
    Select(d.find_element(By.ID, "model")).select_by_visible_text("llama3")
    d.find_element(By.ID, "new").click()
    ask(d, "Hello there")
    assert stored(d)[0]["messages"][1]["content"] == api_answer(s, "llama3", "Hello there")
    # conversations stay in the browser: a reload shows them again
    d.refresh()
    WebDriverWait(d, 10).until(lambda x: len(x.find_elements(By.CSS_SELECTOR, "#convs li")) >= 3)
