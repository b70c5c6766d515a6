# The platform stack's settings for prod: terraform apply -var-file=prod.tfvars in the
# workspace prod. Committed, so that every apply uses all of them.
acme_email                   = "ops@spruce.example" # Let's Encrypt's contact for expiry warnings
database_password_generation = 1                    # raise by one to rotate the database passwords
