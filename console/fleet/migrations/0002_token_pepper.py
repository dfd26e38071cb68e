"""The id of the pepper each token hash was made with (console/fleet/tokens.py).

Every hash made before this migration was keyed with SECRET_KEY (or the old
single WSGI_FLEET_TOKEN_PEPPER): it is marked ``secret-key``, under which it
still verifies, and is hashed again under the newest configured pepper the
first time it is used (docs/tokens.md). No token is revoked.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("fleet", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="agenttoken",
            name="pepper",
            field=models.CharField(default="secret-key", editable=False, max_length=32,
                                   help_text="Id of the pepper the digest was made with (docs/tokens.md)."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="pepper",
            field=models.CharField(default="secret-key", editable=False, max_length=32,
                                   help_text="Id of the pepper the digest was made with (docs/tokens.md)."),
            preserve_default=False,
        ),
    ]
