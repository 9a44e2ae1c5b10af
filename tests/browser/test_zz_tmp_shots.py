from pathlib import Path
import importlib.util
def test_take_screenshots(live_stack):
    spec = importlib.util.spec_from_file_location("shots", Path(__file__).with_name("screenshots.py"))
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    print(mod.take(live_stack.web_url + "/", Path("/tmp/widgetdev/realshots")))
