from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        # The id breaks ties between notes saved at the same instant.
        ordering = ("-created_at", "-id")

    def __str__(self):
        return self.text

    def as_json(self):
        return {"id": self.id, "text": self.text, "created_at": self.created_at.isoformat()}
