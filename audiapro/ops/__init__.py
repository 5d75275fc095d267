"""Operations helpers: the local stack (`make up` / `make down`) and reliable process control.

Standard library only, so that `make down` works even without the project's virtualenv.
"""
