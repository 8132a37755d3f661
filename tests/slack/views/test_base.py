from clmbot.slack.views.base import esc


def test_escaping():
    assert esc("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
