"""The requirement types' own semantics (shared by the loader and the solver)."""

from dms.ensemble._requirements import Location, LocationConstraint, Resources

ASHBURN = Location(continent="NA", country="US", city="Ashburn")
DALLAS = Location(continent="NA", country="US", city="Dallas")
BERLIN = Location(continent="EU", country="DE", city="Berlin")


def test_accept_and_reject_combine_as_accept_minus_reject() -> None:
    us_but_ashburn = LocationConstraint(accept=(Location(country="us"),),
                                        reject=(Location(city="Ashburn"),))
    assert us_but_ashburn.admits(DALLAS)
    assert not us_but_ashburn.admits(ASHBURN)
    assert not us_but_ashburn.admits(BERLIN)


def test_reject_alone_admits_everything_else_and_empty_admits_all() -> None:
    assert LocationConstraint(reject=(Location(continent="EU"),)).admits(DALLAS)
    assert not LocationConstraint(reject=(Location(continent="EU"),)).admits(BERLIN)
    assert LocationConstraint().admits(BERLIN)


def test_an_entry_field_the_provider_does_not_report_never_matches() -> None:
    assert not Location(city="Dallas").covers(Location(country="US"))


def test_resources_add_and_fit() -> None:
    need = Resources(cpu=1.5, ram=2, disk=3) + Resources(cpu=0.5, ram=1, disk=1)
    assert need == Resources(cpu=2.0, ram=3, disk=4)
    assert need.fits_in(Resources(cpu=2, ram=3, disk=4))
    assert not need.fits_in(Resources(cpu=2, ram=2, disk=4))
